//! A stand-in for an OpenAI-compatible service on a random loopback port: deterministic fake
//! embeddings, a canned chat answer, and an error mode per model name.
//!
//! Models: `fail-500` (HTTP 500 with an OpenAI error body), `malformed` (200 with a body that is
//! not the answer), `wrong-count` (one vector too few), `wrong-dims` (4 dimensions instead of 8),
//! `zeros` (all-zero vectors), `slow` (answers after 3 s), `keyed` (401 unless the bearer token is
//! `sk-test`), `empty` (chat: no choices). Any other name answers normally.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// Length of the fake vectors.
pub const FAKE_DIMENSIONS: usize = 8;

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: &'static str,
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Log {
    received: Mutex<Vec<Received>>,
}

pub struct StandIn {
    /// The API root, e.g. `http://127.0.0.1:41234/v1`.
    pub base_url: String,
    log: Arc<Log>,
}

impl StandIn {
    pub async fn start() -> Self {
        let log = Arc::new(Log::default());
        let app = axum::Router::new()
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/chat/completions", post(chat))
            .with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stand-in");
        let address = listener.local_addr().expect("stand-in address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{address}/v1"),
            log,
        }
    }

    /// Every request so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.log.received.lock().expect("log lock").clone()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.log.received.lock().expect("log lock").clear();
    }
}

/// The stand-in's vector for `text` before normalisation: a few counts of its bytes, so different
/// texts differ and the same text always gives the same vector. Never all zeros.
pub fn fake_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![1.0_f32; dimensions];
    for (position, byte) in text.bytes().enumerate() {
        vector[(usize::from(byte) + position) % dimensions] += f32::from(byte % 13);
    }
    vector
}

fn record(log: &Log, path: &'static str, headers: &HeaderMap, body: &Value) {
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    log.received.lock().expect("log lock").push(Received {
        path,
        body: body.clone(),
        authorization,
    });
}

/// The shared error modes; `None` means answer normally.
async fn error_mode(model: &str, headers: &HeaderMap) -> Option<Response> {
    match model {
        "fail-500" => Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"message": "the GPU caught fire", "type": "server_error"}})),
            )
                .into_response(),
        ),
        "malformed" => Some((StatusCode::OK, "this is not JSON").into_response()),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            None
        }
        "keyed" => {
            let authorized = headers
                .get("authorization")
                .is_some_and(|value| value == "Bearer sk-test");
            (!authorized).then(|| {
                (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": {"message": "Incorrect API key provided"}})),
                )
                    .into_response()
            })
        }
        _ => None,
    }
}

async fn embeddings(
    State(log): State<Arc<Log>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    record(&log, "/v1/embeddings", &headers, &body);
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let Some(inputs) = body["input"].as_array() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "input must be a list"}})),
        )
            .into_response();
    };
    if let Some(response) = error_mode(&model, &headers).await {
        return response;
    }
    let dimensions = if model == "wrong-dims" {
        4
    } else {
        FAKE_DIMENSIONS
    };
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let text = input.as_str().unwrap_or_default();
            let embedding = if model == "zeros" {
                vec![0.0; dimensions]
            } else {
                fake_vector(text, dimensions)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    if model == "wrong-count" {
        data.pop();
    }
    // Real services may answer out of order; the client must sort by `index`.
    data.reverse();
    Json(json!({"object": "list", "data": data, "model": model})).into_response()
}

async fn chat(
    State(log): State<Arc<Log>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    record(&log, "/v1/chat/completions", &headers, &body);
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(response) = error_mode(&model, &headers).await {
        return response;
    }
    if model == "empty" {
        return Json(json!({"choices": []})).into_response();
    }
    let user = body
        .pointer("/messages/1/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Json(json!({
        "id": "chatcmpl-stand-in",
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": format!("canned answer to: {user}")},
            "finish_reason": "stop"
        }]
    }))
    .into_response()
}
