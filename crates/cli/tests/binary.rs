//! The real `membrain` executable: help, keys, export/import, `serve`, stdio, crash safety and
//! graceful shutdown.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use support::{ServerProcess, TestStack, call_ok, membrain, membrain_output};

#[tokio::test]
async fn help_teaches_commands_and_configuration() {
    let (ok, help, _) = membrain_output(&["--help"], &[]).await;
    assert!(ok);
    for expected in [
        "serve",
        "api",
        "mcp",
        "keys",
        "export",
        "import",
        "Examples:",
        "MEMBRAIN_DATA_DIR",
        "LOG_LEVEL",
    ] {
        assert!(
            help.contains(expected),
            "--help lacks {expected:?}:\n{help}"
        );
    }
    let (_, mcp_help, _) = membrain_output(&["mcp", "--help"], &[]).await;
    for expected in [
        "API_BASE_URL",
        "MCP_SERVER_HOST",
        "MCP_SERVER_PORT",
        "MEMBRAIN_API_KEY",
        "stdio",
        "MEMBRAIN_HTTP_HEADER_TIMEOUT_SECS",
        "MEMBRAIN_HTTP_MAX_CONNECTIONS",
        "MEMBRAIN_HTTP_MAX_CONCURRENT_REQUESTS",
        "MEMBRAIN_KEYS_MAX_STALENESS_SECS",
    ] {
        assert!(mcp_help.contains(expected), "mcp --help lacks {expected:?}");
    }
    // An empty allow-list must not start a server that accepts any Host.
    let (ok, _, stderr) = membrain_output(&["mcp"], &[("MEMBRAIN_MCP_ALLOWED_HOSTS", "")]).await;
    assert!(!ok);
    assert!(
        stderr.contains("MEMBRAIN_MCP_ALLOWED_HOSTS") && stderr.contains("`*`"),
        "{stderr}"
    );
    let (ok, _, stderr) = membrain_output(&["api", "--http-max-connections", "0"], &[]).await;
    assert!(!ok);
    assert!(stderr.contains("--http-max-connections"), "{stderr}");
    let (ok, _, stderr) = membrain_output(&["api", "--host", "not-an-ip"], &[]).await;
    assert!(!ok);
    assert!(stderr.contains("not an IP address"), "{stderr}");
    let (ok, _, stderr) = membrain_output(&["keys", "list", "--log-level", "loud"], &[]).await;
    assert!(!ok);
    assert!(stderr.contains("LOG_LEVEL"), "{stderr}");
}

#[tokio::test]
async fn keys_and_transfer_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (ok, created, err) = membrain_output(
        &[
            "--data-dir",
            data,
            "keys",
            "create",
            "--tenant",
            "team-a",
            "--label",
            "ci",
            "--json",
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(created["tenant"], "team-a");
    assert!(created["key"].as_str().unwrap().starts_with("mb_"));
    let (_, listed, _) =
        membrain_output(&["--data-dir", data, "keys", "list", "--json"], &[]).await;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["label"], "ci");
    assert!(
        !listed
            .to_string()
            .contains(created["key"].as_str().unwrap()),
        "keys are never listed"
    );
    let (_, table, _) = membrain_output(&["--data-dir", data, "keys", "list"], &[]).await;
    assert!(
        table.contains("team-a") && table.contains("active"),
        "{table}"
    );
    let id = created["id"].as_str().unwrap();
    let (ok, revoked, _) =
        membrain_output(&["--data-dir", data, "keys", "revoke", id, "--json"], &[]).await;
    assert!(ok);
    assert!(revoked.contains("revoked_at"));
    let (ok, _, err) =
        membrain_output(&["--data-dir", data, "keys", "revoke", "key_nope"], &[]).await;
    assert!(!ok && err.contains("keys list"), "{err}");
    let (ok, _, err) = membrain_output(
        &["--data-dir", data, "keys", "create", "--tenant", "Bad Name"],
        &[],
    )
    .await;
    assert!(!ok && err.contains("tenant"), "{err}");

    // Import a hand-written export, then export it again.
    let file = dir.path().join("in.jsonl");
    let now = "2026-01-01T00:00:00Z";
    let lines = [
        json!({"type": "memory", "id": "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a01", "content": "Imported fact one", "tags": ["x"], "category": "general", "context": "", "keywords": [], "links": [], "evolution_history": [], "created_at": now, "updated_at": now}),
        json!({"type": "memory", "id": "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a02", "content": "Imported fact two", "tags": [], "category": "general", "context": "", "keywords": [], "links": [], "evolution_history": [], "created_at": now, "updated_at": now}),
        json!({"type": "link", "memory_id_1": "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a01", "memory_id_2": "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a02", "description": "both imported", "created_at": now}),
    ];
    std::fs::write(
        &file,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let (ok, report, err) = membrain_output(
        &[
            "--data-dir",
            data,
            "import",
            "--tenant",
            "team-a",
            file.to_str().unwrap(),
            "--json",
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        (report["created"].as_u64(), report["links"].as_u64()),
        (Some(2), Some(1))
    );
    let (ok, exported, err) =
        membrain_output(&["--data-dir", data, "export", "--tenant", "team-a"], &[]).await;
    assert!(ok, "{err}");
    assert_eq!(exported.lines().count(), 3);
    assert!(exported.contains("both imported"));
    let (_, other, _) =
        membrain_output(&["--data-dir", data, "export", "--tenant", "team-b"], &[]).await;
    assert_eq!(other.lines().count(), 0, "another tenant exports nothing");
    std::fs::write(&file, "not json\n").unwrap();
    let (ok, _, err) = membrain_output(
        &[
            "--data-dir",
            data,
            "import",
            "--tenant",
            "team-a",
            file.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(!ok && err.contains("line 1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_a_key_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut command = membrain();
        command.args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "serve",
            "--api-port",
            "0",
            "--mcp-port",
            "0",
        ]);
        ServerProcess::start(command)
    };
    let mut first = start();
    let mcp_line = first.wait_for("MCP ").await;
    let mcp_url = mcp_line.split_whitespace().last().unwrap().to_owned();
    first.wait_for("shown once").await;
    first.wait_for("").await;
    let key = first.wait_for("mb_").await.trim().to_owned();
    let cursor = first.wait_for("\"url\"").await;
    assert!(
        cursor.contains(&mcp_url) && cursor.contains(&key),
        "{cursor}"
    );

    // The printed configuration works: an MCP client with that key.
    let stack_like = support::TestStackUrls {
        mcp_url: mcp_url.clone(),
    };
    let client = stack_like.mcp(&key).await;
    let stats = call_ok(&client, "get_stats", json!({})).await;
    assert_eq!(stats["total_memories"], 0);
    client.cancel().await.unwrap();
    assert!(first.terminate().await, "serve exits cleanly on SIGTERM");

    // Second start: the key exists, none is printed.
    let mut second = start();
    second.wait_for("Data").await;
    let next = second.wait_for("key").await;
    assert!(!next.contains("mb_"), "no new key on later starts: {next}");
    assert!(second.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_transport_bridges_with_the_configured_key() {
    let stack = TestStack::spawn(membrain_store::Backend::Sqlite).await;
    let key = stack.key("stdio-user").await;
    let mut command = membrain();
    command
        .args(["mcp", "--transport", "stdio"])
        .env("API_BASE_URL", &stack.api_url)
        .env("MEMBRAIN_API_KEY", &key);
    let client = support::client_config(rmcp::model::ProtocolVersion::V_2025_11_25)
        .serve(TokioChildProcess::new(command).expect("spawn the stdio server"))
        .await
        .expect("a session");
    let added = call_ok(
        &client,
        "add_memory",
        json!({"content": "Stdio users like pipes"}),
    )
    .await;
    assert_eq!(added["action"], "created");
    let found = call_ok(
        &client,
        "search_memories",
        json!({"query": "Who likes pipes?"}),
    )
    .await;
    assert_eq!(found["count"], 1);
    client.cancel().await.unwrap();

    let (ok, _, err) = membrain_output(
        &["mcp", "--transport", "stdio"],
        &[("API_BASE_URL", &stack.api_url)],
    )
    .await;
    assert!(
        !ok && err.contains("MEMBRAIN_API_KEY"),
        "a missing key is explained: {err}"
    );
}

/// Starts `membrain api` on a free port with `extra` arguments; returns it and its base URL.
async fn start_api(database_url: &str, extra: &[&str]) -> (ServerProcess, String) {
    let mut command = membrain();
    command
        .args([
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
        .args(extra);
    let mut process = ServerProcess::start(command);
    let address = process.wait_for_address("Memory REST API listening").await;
    (process, format!("http://{address}/api/v1"))
}

async fn crash_after_accept(backend: membrain_store::Backend) {
    let database = membrain_store::testing::TestDatabase::new(backend).await;
    let (ok, created, err) = membrain_output(
        &[
            "--database-url",
            &database.url,
            "keys",
            "create",
            "--tenant",
            "crash",
            "--json",
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let key = serde_json::from_str::<Value>(&created).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let post = |base: &str, i: usize| {
        http.post(format!("{base}/memories"))
            .header("x-api-key", &key)
            .json(&json!({"content": format!("Acknowledged fact number {i}")}))
            .send()
    };

    // 1. No worker: every 202'd job is still pending when the process dies.
    let (api, base) = start_api(&database.url, &["--ingest-workers", "0"]).await;
    let mut jobs = Vec::new();
    for i in 0..3 {
        let response = post(&base, i).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        jobs.push(
            response.json::<Value>().await.unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    api.crash().await;
    // 2. With workers, killed right after the last 202: some jobs may be mid-flight.
    let (api, base) = start_api(&database.url, &["--job-lease-secs", "1"]).await;
    for i in 3..23 {
        let response = post(&base, i).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        jobs.push(
            response.json::<Value>().await.unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    api.crash().await;

    // After a restart every acknowledged job completes.
    let (api, base) = start_api(&database.url, &["--job-lease-secs", "1"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Similar facts may merge (near-duplicates), so count the memories the jobs ended in.
    let mut stored = std::collections::HashSet::new();
    for job in &jobs {
        loop {
            let answer: Value = http
                .get(format!("{base}/memories/jobs/{job}"))
                .header("x-api-key", &key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if answer["status"] == "completed" {
                stored.insert(answer["result"]["memory_id"].as_str().unwrap().to_owned());
                break;
            }
            assert_ne!(answer["status"], "failed", "{answer}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job} did not complete after restart: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let stats: Value = http
        .get(format!("{base}/stats"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!stored.is_empty());
    assert_eq!(stats["total_memories"], stored.len(), "{stats}");
    assert!(api.terminate().await, "the API exits cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_ingest_survives_a_crash_on_sqlite() {
    crash_after_accept(membrain_store::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_ingest_survives_a_crash_on_postgres() {
    crash_after_accept(membrain_store::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_reach_the_logs_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (ok, created, _) = membrain_output(
        &[
            "--data-dir",
            data,
            "keys",
            "create",
            "--tenant",
            "secret",
            "--json",
        ],
        &[],
    )
    .await;
    assert!(ok);
    let key = serde_json::from_str::<Value>(&created).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut command = membrain();
    command
        .args([
            "--data-dir",
            data,
            "--log-level",
            "trace",
            "--log-format",
            "json",
            "serve",
            "--api-port",
            "0",
            "--mcp-port",
            "0",
        ])
        .stderr(std::process::Stdio::piped());
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let collect = |mut stream: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut all = Vec::new();
            let _ = stream.read_to_end(&mut all).await;
            String::from_utf8_lossy(&all).into_owned()
        })
    };
    // Read stdout until the banner names the MCP URL, keeping everything.
    let mut seen = String::new();
    let mcp_url = {
        use tokio::io::AsyncReadExt;
        let mut buffer = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(30), stdout.read(&mut buffer))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "serve exited: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            if let Some(line) = seen
                .lines()
                .find(|l| l.trim_start().starts_with("MCP ") && l.contains("/mcp"))
            {
                break line.split_whitespace().last().unwrap().to_owned();
            }
        }
    };
    let api_url = mcp_url.replace("/mcp", "");
    let api_line = seen
        .lines()
        .find(|l| l.contains("REST API"))
        .map(|l| l.split_whitespace().last().unwrap().to_owned());
    let rest_out = collect(Box::new(stdout));
    let err_out = collect(Box::new(stderr));

    // Use the key every way there is: REST with both headers, MCP tools, a failing call.
    let http = reqwest::Client::new();
    let api_base = api_line.unwrap_or_else(|| format!("{api_url}/api/v1"));
    http.post(format!("{api_base}/memories"))
        .header("x-api-key", &key)
        .json(&json!({"content": "secret-keeping test"}))
        .send()
        .await
        .unwrap();
    http.get(format!("{api_base}/stats"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    http.get(format!("{api_base}/stats?x=1"))
        .header("x-api-key", format!("{key}x"))
        .send()
        .await
        .unwrap();
    let client = support::TestStackUrls { mcp_url }.mcp(&key).await;
    call_ok(&client, "get_stats", json!({})).await;
    call_ok(
        &client,
        "search_memories",
        json!({"query": "secret keeping"}),
    )
    .await;
    support::call_err(
        &client,
        "get_memories",
        json!({"memory_ids": ["0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b"]}),
    )
    .await;
    client.cancel().await.unwrap();

    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    let logs = format!(
        "{seen}{}{}",
        rest_out.await.unwrap(),
        err_out.await.unwrap()
    );
    assert!(
        logs.contains("TRACE") || logs.contains("\"level\":\"TRACE\"") || logs.contains("DEBUG"),
        "trace logging was on"
    );
    // No piece of the key's secret part, 8 characters or longer, appears anywhere.
    let secret = &key["mb_".len()..];
    for start in 0..=secret.len() - 8 {
        let piece = &secret[start..start + 8];
        assert!(
            !logs.contains(piece),
            "a piece of the key ({piece}) reached the logs"
        );
    }
}

/// A server started before its PostgreSQL is reachable (a database still starting beside the
/// tasks) waits for it and then serves, instead of exiting to be restarted over and over; a
/// one-shot command does not wait.
#[tokio::test]
async fn the_api_waits_for_a_postgres_that_comes_up_late() {
    let database =
        membrain_store::testing::TestDatabase::new(membrain_store::Backend::Postgres).await;
    // The real server's host:port, and a port on which nothing listens yet.
    let (scheme_and_user, rest) = database.url.split_once('@').unwrap();
    let (server_address, database_name) = rest.split_once('/').unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // With a password (trust authentication ignores it), which no log line may show.
    let late_url = format!("{scheme_and_user}:not-for-logs@127.0.0.1:{port}/{database_name}");

    let started = std::time::Instant::now();
    let (ok, _, err) = membrain_output(&["--database-url", &late_url, "keys", "list"], &[]).await;
    assert!(!ok && err.contains("opening the database"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a one-shot command reports at once"
    );

    let mut command = membrain();
    command.args([
        "--database-url",
        &late_url,
        "--log-format",
        "json",
        "api",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
    ]);
    let mut api = ServerProcess::start(command);
    let waiting = api.wait_for("cannot be reached yet").await;
    assert!(
        !waiting.contains("not-for-logs"),
        "the URL is shown without its password: {waiting}"
    );
    // The database "comes up": the port now forwards to the real server.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let target = server_address.to_owned();
    let forwarder = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let address = api.wait_for_address("Memory REST API listening").await;
    let health = reqwest::get(format!("http://{address}/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(api.terminate().await, "a clean stop");
    forwarder.abort();
}

/// `membrain database setup` makes the role the services sign in as: not the administrator, no
/// power beyond its own tables, its password stored only as a SCRAM verifier; run again it sets
/// a new password; and `membrain api` signed in as that role creates its tables and serves.
#[tokio::test]
async fn database_setup_makes_an_application_role_the_services_run_as() {
    use sqlx::{Connection, Row};
    let database =
        membrain_store::testing::TestDatabase::new(membrain_store::Backend::Postgres).await;
    // Roles belong to the whole server: one of this run's own.
    let role = format!("membrain_app_{}", uuid::Uuid::new_v4().simple());
    let first_password = "first-Password-0123456789";
    let setup = |password: &'static str, role: String, url: String| async move {
        membrain_output(
            &[
                "database",
                "setup",
                "--admin-url",
                &url,
                "--app-role",
                &role,
                "--json",
            ],
            &[("MEMBRAIN_APP_DATABASE_PASSWORD", password)],
        )
        .await
    };

    let (ok, out, err) = setup(first_password, role.clone(), database.url.clone()).await;
    assert!(ok, "{err}");
    assert!(!out.contains(first_password) && !err.contains(first_password));
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer, json!({ "role": role, "outcome": "created" }));

    let mut admin = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let attributes = "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolpassword \
                      FROM pg_authid WHERE rolname = $1";
    let row = sqlx::query(attributes)
        .bind(&role)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let flags: (bool, bool, bool, bool) = (
        row.get("rolsuper"),
        row.get("rolcreaterole"),
        row.get("rolcreatedb"),
        row.get("rolcanlogin"),
    );
    assert_eq!(flags, (false, false, false, true), "only LOGIN");
    let first_verifier: String = row.get("rolpassword");
    assert!(
        first_verifier.starts_with("SCRAM-SHA-256$4096:"),
        "{first_verifier}"
    );

    // Again, with a new password (a rotation): the same role, a new verifier.
    let (ok, out, err) = setup(
        "second-Password-0123456789",
        role.clone(),
        database.url.clone(),
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("\"updated\""), "{out}");
    let second_verifier: String =
        sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(&role)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_ne!(first_verifier, second_verifier);

    // The API as that role: it migrates (its tables are its own) and serves.
    let (scheme_and_user, rest) = database.url.split_once('@').unwrap();
    let scheme = scheme_and_user.split_once("://").unwrap().0;
    let app_url = format!("{scheme}://{role}@{rest}");
    let mut command = membrain();
    command.args([
        "--database-url",
        &app_url,
        "api",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
    ]);
    let mut api = ServerProcess::start(command);
    let address = api.wait_for_address("Memory REST API listening").await;
    let health = reqwest::get(format!("http://{address}/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(api.terminate().await, "a clean stop");
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableowner::text FROM pg_tables WHERE schemaname = 'public'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        owners,
        vec![role.clone()],
        "the role owns every table it made"
    );

    // Bad input: each refused with what to do, nothing changed.
    for (args, env, expected) in [
        (
            vec!["--app-role", "App-Role"],
            vec![("MEMBRAIN_APP_DATABASE_PASSWORD", first_password)],
            "not a usable role name",
        ),
        (
            vec!["--app-role", "membrain_other"],
            vec![("MEMBRAIN_APP_DATABASE_PASSWORD", "short")],
            "16 to 1024 printable ASCII",
        ),
        (
            vec!["--app-role", "membrain_other"],
            vec![],
            "MEMBRAIN_APP_DATABASE_PASSWORD is not set",
        ),
    ] {
        let mut all = vec!["database", "setup", "--admin-url", &database.url];
        all.extend(args);
        let (ok, _, err) = membrain_output(&all, &env).await;
        assert!(!ok && err.contains(expected), "{expected}: {err}");
    }
    let (ok, _, err) = membrain_output(
        &["database", "setup", "--admin-url", "sqlite:///tmp/x.db"],
        &[("MEMBRAIN_APP_DATABASE_PASSWORD", first_password)],
    )
    .await;
    assert!(!ok && err.contains("must be a postgres:// URL"), "{err}");

    // The role outlives the database it was granted: drop the database first, then the role.
    drop(admin);
    let admin_url = membrain_sql::testing::postgres_admin_url();
    drop(database);
    let mut server = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
        .execute(&mut server)
        .await
        .unwrap();
}
