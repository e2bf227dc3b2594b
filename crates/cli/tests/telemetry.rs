//! Metrics and traces of the real binary: `membrain api` and `membrain mcp` as separate
//! processes, their `/metrics` listeners scraped, their spans received by an OTLP receiver the
//! test runs itself.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use membrain_store::Backend;
use membrain_store::testing::TestDatabase;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message;
use reqwest::StatusCode;
use rmcp::model::{CallToolRequestParams, MetaObject, RequestMetaObject};
use serde_json::{Value, json};
use support::{McpClient, ServerProcess, TestStackUrls, call_ok, call_tool, membrain_output};

const TENANT: &str = "acme-metrics";

/// A fresh database and a key for [`TENANT`], made by `membrain keys create`.
async fn database_with_key(backend: Backend) -> (TestDatabase, String) {
    let database = TestDatabase::new(backend).await;
    let (ok, created, err) = membrain_output(
        &[
            "--database-url",
            &database.url,
            "keys",
            "create",
            "--tenant",
            TENANT,
            "--json",
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let key = serde_json::from_str::<Value>(&created).expect("keys create --json")["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    (database, key)
}

/// A running `membrain api` or `membrain mcp`: its base URL and, when asked for, its metrics
/// address.
struct Service {
    process: ServerProcess,
    url: String,
    metrics: Option<String>,
}

/// Starts `membrain api` on loopback port 0 with JSON logs, `extra` arguments and environment,
/// its embedded time-series store in `data_dir` (one process at a time may hold it).
async fn start_api(
    data_dir: &tempfile::TempDir,
    database_url: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Service {
    let mut command = support::membrain();
    command
        .args([
            "--data-dir",
            data_dir.path().to_str().expect("a UTF-8 path"),
            "--database-url",
            database_url,
            "--log-format",
            "json",
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .args(extra)
        .envs(env.iter().copied());
    start(command, extra, "Memory REST API listening").await
}

/// Starts `membrain mcp` bridging to `api_url`.
async fn start_mcp(api_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Service {
    let mut command = support::membrain();
    command
        .args([
            "--log-format",
            "json",
            "mcp",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--api-base-url",
            api_url,
        ])
        .args(extra)
        .envs(env.iter().copied());
    start(command, extra, "MCP server listening at /mcp").await
}

async fn start(command: tokio::process::Command, extra: &[&str], ready: &str) -> Service {
    let mut process = ServerProcess::start(command);
    let metrics = if extra.contains(&"--metrics-listen") {
        Some(
            process
                .wait_for_address("metrics listening at /metrics")
                .await,
        )
    } else {
        None
    };
    let address = process.wait_for_address(ready).await;
    process.drain_output();
    Service {
        process,
        url: format!("http://{address}"),
        metrics,
    }
}

async fn scrape(service: &Service) -> String {
    let address = service.metrics.as_deref().expect("a metrics listener");
    let response = reqwest::get(format!("http://{address}/metrics"))
        .await
        .expect("scrape /metrics");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("the exposition")
}

/// The sum of the values of `name`'s series that carry every one of `labels` (`None` when no
/// series matches).
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(rest) => match rest.split_once("} ") {
                Some(parts) => parts,
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(value) => ("", value),
                None => continue,
            },
        };
        if labels
            .iter()
            .all(|(label, value)| label_text.contains(&format!("{label}=\"{value}\"")))
        {
            let value: f64 = value.trim().parse().expect("a sample value");
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

fn assert_series_at_least(text: &str, name: &str, labels: &[(&str, &str)], least: f64) {
    let value = series(text, name, labels)
        .unwrap_or_else(|| panic!("no {name} series with {labels:?} in:\n{text}"));
    assert!(
        value >= least,
        "{name} {labels:?} is {value}, expected at least {least}:\n{text}"
    );
}

async fn rest(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http.request(method, url).header("x-api-key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("a REST call");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls the job until it finished (at most 30 s).
async fn wait_for_job(http: &reqwest::Client, api: &str, key: &str, job_id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let url = format!("{api}/api/v1/memories/jobs/{job_id}");
        let (_, job) = rest(http, reqwest::Method::GET, &url, key, None).await;
        if job["status"] == "completed" {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job not done: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_tool_calls_on_their_own_port_on_sqlite() {
    metrics_count_requests_and_tool_calls_on_their_own_port(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_tool_calls_on_their_own_port_on_postgres() {
    metrics_count_requests_and_tool_calls_on_their_own_port(Backend::Postgres).await;
}

async fn metrics_count_requests_and_tool_calls_on_their_own_port(backend: Backend) {
    let (database, key) = database_with_key(backend).await;
    let metrics_flag = ["--metrics-listen", "127.0.0.1:0"];
    let data_dir = tempfile::tempdir().expect("a data directory");
    let api = start_api(&data_dir, &database.url, &metrics_flag, &[]).await;
    let mcp = start_mcp(&api.url, &metrics_flag, &[]).await;
    let http = reqwest::Client::new();

    // REST: a memory written (and ingested), a search, the stats, and a memory that is not there.
    let (status, queued) = rest(
        &http,
        reqwest::Method::POST,
        &format!("{}/api/v1/memories", api.url),
        &key,
        Some(json!({"content": "The metrics test likes histograms", "tags": ["test"]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let job_id = queued["job_id"].as_str().expect("a job id");
    wait_for_job(&http, &api.url, &key, job_id).await;
    let (status, found) = rest(
        &http,
        reqwest::Method::POST,
        &format!("{}/api/v1/memories/search", api.url),
        &key,
        Some(json!({"query": "what does the test like?"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let missing = uuid::Uuid::new_v4().to_string();
    let (status, _) = rest(
        &http,
        reqwest::Method::GET,
        &format!("{}/api/v1/memories/{missing}", api.url),
        &key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A console page, counted as server `console`.
    let page = http
        .get(format!("{}/console/login", api.url))
        .send()
        .await
        .expect("the console's sign-in page");
    assert_eq!(page.status(), StatusCode::OK);

    // MCP: one call that works, one with arguments the schema refuses.
    let client: McpClient = TestStackUrls {
        mcp_url: format!("{}/mcp", mcp.url),
    }
    .mcp(&key)
    .await;
    let stats = call_ok(&client, "get_stats", json!({})).await;
    assert_eq!(stats["total_memories"], 1, "{stats}");
    let refused = call_tool(&client, "add_memory", json!({"content": 42})).await;
    assert_eq!(refused.is_error, Some(true));
    client.cancel().await.expect("close the MCP session");

    let api_metrics = scrape(&api).await;
    let counted = |route: &str, method: &str, status: &str| {
        assert_series_at_least(
            &api_metrics,
            "membrain_http_requests_total",
            &[
                ("server", "api"),
                ("route", route),
                ("method", method),
                ("status", status),
            ],
            1.0,
        )
    };
    counted("/api/v1/memories", "POST", "202");
    counted("/api/v1/memories/search", "POST", "200");
    counted("/api/v1/memories/jobs/{job_id}", "GET", "200");
    // The route's template, never the raw path with the id in it.
    counted("/api/v1/memories/{memory_id}", "GET", "404");
    assert!(!api_metrics.contains(&missing) && !api_metrics.contains(job_id));
    assert_series_at_least(
        &api_metrics,
        "membrain_http_requests_total",
        &[
            ("server", "console"),
            ("route", "/console/login"),
            ("method", "GET"),
            ("status", "200"),
        ],
        1.0,
    );
    // The bridge's key checks and tool calls reach the API too.
    counted("/api/v1/auth/whoami", "GET", "200");
    counted("/api/v1/stats", "GET", "200");
    // Latencies are histograms with buckets.
    assert_series_at_least(
        &api_metrics,
        "membrain_http_request_duration_seconds_bucket",
        &[("route", "/api/v1/memories/search"), ("le", "+Inf")],
        1.0,
    );
    assert_series_at_least(
        &api_metrics,
        "membrain_http_request_duration_seconds_bucket",
        &[("route", "/api/v1/memories/search"), ("le", "60")],
        1.0,
    );
    for phase in ["embed", "rank", "load"] {
        assert_series_at_least(
            &api_metrics,
            "membrain_search_duration_seconds_count",
            &[("phase", phase)],
            1.0,
        );
    }
    assert_series_at_least(
        &api_metrics,
        "membrain_ingest_job_latency_seconds_count",
        &[],
        1.0,
    );
    assert_series_at_least(
        &api_metrics,
        "membrain_ingest_jobs_total",
        &[("outcome", "completed")],
        1.0,
    );
    assert_series_at_least(&api_metrics, "membrain_ingest_queue_depth", &[], 0.0);
    assert_series_at_least(
        &api_metrics,
        "membrain_embedding_batch_size_bucket",
        &[("lane", "request"), ("le", "1")],
        1.0,
    );
    assert_series_at_least(
        &api_metrics,
        "membrain_embedding_duration_seconds_count",
        &[("lane", "ingest")],
        1.0,
    );
    assert_series_at_least(&api_metrics, "membrain_index_memory_bytes", &[], 1.0);
    assert_series_at_least(&api_metrics, "membrain_key_cache_misses_total", &[], 1.0);
    // SQLite: a pool of readers and one writer; PostgreSQL: one pool for both.
    let pools: &[&str] = match backend {
        Backend::Sqlite => &["read", "write"],
        Backend::Postgres => &["shared"],
    };
    for pool in pools {
        for state in ["in_use", "idle"] {
            assert_series_at_least(
                &api_metrics,
                "membrain_db_pool_connections",
                &[("database", "memories"), ("pool", pool), ("state", state)],
                0.0,
            );
        }
        assert_series_at_least(
            &api_metrics,
            "membrain_db_pool_max_connections",
            &[("pool", pool)],
            1.0,
        );
    }
    // At least one connection is open after the requests.
    let open = series(
        &api_metrics,
        "membrain_db_pool_connections",
        &[("database", "memories")],
    )
    .unwrap_or_default();
    assert!(open >= 1.0, "{api_metrics}");

    let mcp_metrics = scrape(&mcp).await;
    assert_series_at_least(
        &mcp_metrics,
        "membrain_mcp_tool_calls_total",
        &[("tool", "get_stats"), ("outcome", "ok")],
        1.0,
    );
    assert_series_at_least(
        &mcp_metrics,
        "membrain_mcp_tool_calls_total",
        &[("tool", "add_memory"), ("outcome", "invalid_arguments")],
        1.0,
    );
    assert_series_at_least(
        &mcp_metrics,
        "membrain_mcp_tool_call_duration_seconds_bucket",
        &[("tool", "get_stats"), ("le", "+Inf")],
        1.0,
    );
    assert_series_at_least(
        &mcp_metrics,
        "membrain_http_requests_total",
        &[
            ("server", "mcp"),
            ("route", "/mcp"),
            ("method", "POST"),
            ("status", "200"),
        ],
        2.0,
    );

    // No tenant and no key in any label by default.
    for text in [&api_metrics, &mcp_metrics] {
        assert!(
            !text.contains(TENANT),
            "a tenant name in the metrics:\n{text}"
        );
        assert!(!text.contains(&key), "a key in the metrics");
        assert!(!text.contains("tenant="), "{text}");
    }

    // The public ports do not serve metrics.
    for base in [&api.url, &mcp.url] {
        let response = reqwest::get(format!("{base}/metrics")).await.expect("GET");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{base}/metrics");
        let body = response.text().await.expect("a body");
        assert!(!body.contains("membrain_"), "{body}");
    }
    assert!(mcp.process.terminate().await);
    assert!(api.process.terminate().await);

    // With per-tenant labels turned on, the tenant is a label.
    let api = start_api(
        &data_dir,
        &database.url,
        &["--metrics-listen", "127.0.0.1:0", "--metrics-tenant-labels"],
        &[],
    )
    .await;
    let (status, _) = rest(
        &http,
        reqwest::Method::GET,
        &format!("{}/api/v1/stats", api.url),
        &key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let labelled = scrape(&api).await;
    assert_series_at_least(
        &labelled,
        "membrain_http_requests_total",
        &[("route", "/api/v1/stats"), ("tenant", TENANT)],
        1.0,
    );
    assert!(!labelled.contains(&key), "a key in the metrics");
    let mcp = start_mcp(
        &api.url,
        &["--metrics-listen", "127.0.0.1:0", "--metrics-tenant-labels"],
        &[],
    )
    .await;
    let client: McpClient = TestStackUrls {
        mcp_url: format!("{}/mcp", mcp.url),
    }
    .mcp(&key)
    .await;
    call_ok(&client, "get_stats", json!({})).await;
    client.cancel().await.expect("close the MCP session");
    let labelled = scrape(&mcp).await;
    assert_series_at_least(
        &labelled,
        "membrain_mcp_tool_calls_total",
        &[("tool", "get_stats"), ("outcome", "ok"), ("tenant", TENANT)],
        1.0,
    );
    assert_series_at_least(
        &labelled,
        "membrain_http_requests_total",
        &[("server", "mcp"), ("route", "/mcp"), ("tenant", TENANT)],
        1.0,
    );
    assert!(!labelled.contains(&key), "a key in the metrics");
    assert!(mcp.process.terminate().await);
    assert!(api.process.terminate().await);
}

/// A span as the receiver got it: which service sent it, its name, ids and parent.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

/// An OTLP/HTTP (protobuf) trace receiver on a loopback port, keeping every span it is sent.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<ReceivedSpan>>>) {
    let received: Arc<Mutex<Vec<ReceivedSpan>>> = Arc::default();
    let keep = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let keep = keep.clone();
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (StatusCode::BAD_REQUEST, Vec::new());
                };
                let mut spans = keep.lock().expect("the span list");
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .iter()
                        .flat_map(|resource| &resource.attributes)
                        .find(|attribute| attribute.key == "service.name")
                        .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
                        .map(|value| match value {
                            any_value::Value::StringValue(name) => name.clone(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    for scope in resource_spans.scope_spans {
                        for span in scope.spans {
                            spans.push(ReceivedSpan {
                                service: service.clone(),
                                name: span.name,
                                trace_id: hex(&span.trace_id),
                                span_id: hex(&span.span_id),
                                parent_span_id: hex(&span.parent_span_id),
                            });
                        }
                    }
                }
                (
                    StatusCode::OK,
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let address = listener.local_addr().expect("the receiver's address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The trace the MCP client starts: its id and the client's own span.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_mcp_client_through_the_bridge_to_the_store() {
    let (receiver, received) = otlp_receiver().await;
    let otel = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let (database, key) = database_with_key(Backend::Sqlite).await;
    let data_dir = tempfile::tempdir().expect("a data directory");
    let api = start_api(&data_dir, &database.url, &[], &otel).await;
    let mcp = start_mcp(&api.url, &[], &otel).await;

    let client: McpClient = TestStackUrls {
        mcp_url: format!("{}/mcp", mcp.url),
    }
    .mcp(&key)
    .await;
    let mut meta = MetaObject::new();
    meta.set_traceparent(format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"));
    let arguments = json!({"query": "anything about traces?"});
    let mut params = CallToolRequestParams::new("search_memories")
        .with_arguments(arguments.as_object().cloned().unwrap_or_default());
    params.meta = Some(RequestMetaObject(meta));
    let result = client.call_tool(params).await.expect("search_memories");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    client.cancel().await.expect("close the MCP session");

    // Polled until the batch exporters sent the spans (every 100 ms), at most 30 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let trace = loop {
        let trace: Vec<ReceivedSpan> = received
            .lock()
            .expect("the span list")
            .iter()
            .filter(|span| span.trace_id == TRACE_ID)
            .cloned()
            .collect();
        let has = |service: &str, name: &str| {
            trace
                .iter()
                .any(|span| span.service == service && span.name.starts_with(name))
        };
        if has("membrain-mcp", "tool_call")
            && has("membrain-mcp", "api_request")
            && has("membrain-api", "http")
            && has("membrain-api", "store.")
            && has("membrain-api", "embed")
        {
            break trace;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trace is incomplete: {trace:#?}\nall spans: {:#?}",
            received.lock().expect("the span list")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The parent chain, from the API's store span up to the client's span.
    let parent_of = |span: &ReceivedSpan| {
        trace
            .iter()
            .find(|candidate| candidate.span_id == span.parent_span_id)
            .cloned()
    };
    let chain = |start: &ReceivedSpan| {
        let mut chain = vec![(start.service.clone(), start.name.clone())];
        let mut at = start.clone();
        while let Some(parent) = parent_of(&at) {
            chain.push((parent.service.clone(), parent.name.clone()));
            at = parent;
        }
        (chain, at.parent_span_id)
    };
    let handler = trace
        .iter()
        .find(|span| span.service == "membrain-api" && span.name == "http")
        .expect("the API's request span");
    let (handler_chain, root_parent) = chain(handler);
    let names: Vec<&str> = handler_chain
        .iter()
        .map(|(_, name)| name.as_str())
        .collect();
    assert_eq!(
        names,
        ["http", "api_request", "tool_call"],
        "{handler_chain:?}"
    );
    assert_eq!(handler_chain[1].0, "membrain-mcp");
    assert_eq!(
        root_parent, CLIENT_SPAN_ID,
        "the tool call continues the client's span"
    );
    let store = trace
        .iter()
        .find(|span| span.service == "membrain-api" && span.name.starts_with("store."))
        .expect("a store span");
    let (store_chain, _) = chain(store);
    assert!(
        store_chain
            .iter()
            .any(|(service, name)| service == "membrain-api" && name == "http"),
        "the store span sits under the API's request: {store_chain:?}"
    );

    // A client that sends `traceparent` as an HTTP header on /mcp (no `_meta`): its trace
    // continues at the MCP request's span, with the tool call and the API's request under it.
    let header_client = mcp_with_traceparent(
        &format!("{}/mcp", mcp.url),
        &key,
        &format!("00-{HEADER_TRACE_ID}-{HEADER_CLIENT_SPAN_ID}-01"),
    )
    .await;
    call_ok(&header_client, "get_stats", json!({})).await;
    header_client.cancel().await.expect("close the MCP session");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let trace: Vec<ReceivedSpan> = received
            .lock()
            .expect("the span list")
            .iter()
            .filter(|span| span.trace_id == HEADER_TRACE_ID)
            .cloned()
            .collect();
        // The API's request span, up its parents: the bridge's call, the tool call, the MCP
        // request, and then the client's span from the header.
        let by_id = |id: &str| trace.iter().find(|span| span.span_id == id);
        let names_up = |start: &ReceivedSpan| {
            let mut names = vec![start.name.clone()];
            let mut at = start;
            while let Some(parent) = by_id(&at.parent_span_id) {
                names.push(parent.name.clone());
                at = parent;
            }
            (names, at.parent_span_id.clone())
        };
        let handled = trace
            .iter()
            .filter(|span| span.service == "membrain-api" && span.name == "http")
            .map(names_up)
            .any(|(names, root)| {
                names == ["http", "api_request", "tool_call", "mcp"]
                    && root == HEADER_CLIENT_SPAN_ID
            });
        if handled {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the header's trace is incomplete: {trace:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert!(mcp.process.terminate().await);
    assert!(api.process.terminate().await);
}

const HEADER_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const HEADER_CLIENT_SPAN_ID: &str = "b7ad6b7169203331";

/// An MCP client whose every HTTP request carries `traceparent`.
async fn mcp_with_traceparent(url: &str, key: &str, traceparent: &str) -> McpClient {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let headers = [("x-api-key", key), ("traceparent", traceparent)]
        .into_iter()
        .map(|(name, value)| {
            (
                http::HeaderName::from_static(name),
                http::HeaderValue::from_str(value).expect("a header value"),
            )
        })
        .collect();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).custom_headers(headers),
    );
    use rmcp::ServiceExt;
    support::client_config(rmcp::model::ProtocolVersion::V_2025_11_25)
        .serve(transport)
        .await
        .expect("an MCP session")
}
