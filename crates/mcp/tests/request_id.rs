//! The bridge sends each tool call's API requests with the id its own HTTP layer gave the MCP
//! request (`X-Request-Id`), so the API's log lines for a tool call carry the bridge's id.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use membrain_auth::ApiKey;
use membrain_mcp::{McpBackend, McpSettings, router_with};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Each call's path and request id, as the API stand-in saw them.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// An API stand-in: knows one key, answers `/stats`, and notes the request id of every call.
fn recording_api(seen: Seen) -> axum::Router {
    axum::Router::new().fallback(move |request: Request| {
        let seen = seen.clone();
        async move {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let path = request.uri().path().to_owned();
            seen.lock().expect("not poisoned").push((path.clone(), id));
            match path.as_str() {
                "/api/v1/auth/whoami" => axum::Json(json!({ "tenant": "alice" })).into_response(),
                "/api/v1/stats" => axum::Json(json!({
                    "total_memories": 0, "total_links": 0, "avg_links_per_memory": 0.0,
                    "top_tags": [], "categories": [],
                    "usage": { "memories": 0, "stored_bytes": 0, "pending_jobs": 0,
                               "max_memories": 10, "max_stored_bytes": 10, "max_pending_jobs": 10 },
                }))
                .into_response(),
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    })
}

#[tokio::test]
async fn a_tool_call_reaches_the_api_with_the_mcp_request_id() {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let router = router_with(
        &McpSettings::default(),
        McpBackend::InProcess(recording_api(seen.clone())),
        CancellationToken::new(),
    )
    .expect("router");
    let key = ApiKey::generate();
    let call = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "get_stats", "arguments": {} },
    });
    let request = Request::post("/mcp")
        .header("host", "localhost:8100")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .header("x-api-key", key.expose_secret())
        .header("x-request-id", "agent-request-7")
        .body(Body::from(call.to_string()))
        .expect("a request");
    let response = router.oneshot(request).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(
        answer["result"]["structuredContent"]["total_memories"], 0,
        "{answer}"
    );
    let seen = seen.lock().expect("not poisoned").clone();
    // The key check (whoami) is the gate's, outside any tool call; the tool's call carries the id.
    let stats: Vec<_> = seen
        .iter()
        .filter(|(path, _)| path == "/api/v1/stats")
        .collect();
    assert_eq!(stats.len(), 1, "{seen:?}");
    assert_eq!(stats[0].1.as_deref(), Some("agent-request-7"), "{seen:?}");
}
