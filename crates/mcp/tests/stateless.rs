//! The 2026-07-28 wire (stateless, SEP-2575; standard headers, SEP-2243) through the whole
//! router, gate included: what the official conformance suite's `server-stateless` and
//! `http-header-validation` scenarios check (`scripts/conformance` runs them against the real
//! processes), pinned here so that a change to the gate or to rmcp shows up in `cargo test`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use membrain_mcp::{McpSettings, router_with};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

mod support;

use support::{VALID_KEY, direct_backend};

const V2026: &str = "2026-07-28";

/// The request `_meta` every 2026-07-28 request carries.
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientInfo": {"name": "stateless-test", "version": "1.0.0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// A POST to /mcp with the key, the two content types accepted, and `headers`.
fn post(headers: &[(&str, &str)], body: &Value) -> Request<Body> {
    let mut builder = Request::post("/mcp")
        .header("host", "localhost:8080")
        .header("x-api-key", VALID_KEY)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Body::from(body.to_string()))
        .expect("a request")
}

/// A conformant 2026-07-28 request: `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` when the
/// method names something, and `_meta` in the params.
fn request(id: i64, method: &str, mut params: Value) -> Request<Body> {
    params["_meta"] = meta();
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut headers = vec![("mcp-protocol-version", V2026), ("mcp-method", method)];
    if let Some(name) = name.as_deref() {
        headers.push(("mcp-name", name));
    }
    post(
        &headers,
        &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
    )
}

async fn send(request: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let dir = tempfile::tempdir().expect("a directory");
    let router = router_with(
        &McpSettings::default(),
        direct_backend(dir.path()).await,
        CancellationToken::new(),
    )
    .expect("router");
    let response: Response = router
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap_or("?").to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes));
    });
    (status, session, body)
}

#[tokio::test]
async fn server_discover_answers_without_a_handshake_or_a_session() {
    let (status, session, body) = send(request(1, "server/discover", json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(session, None, "stateless: no Mcp-Session-Id");
    let result = &body["result"];
    assert_eq!(result["resultType"], "complete", "{body}");
    let versions = result["supportedVersions"].as_array().expect("versions");
    for version in ["2025-06-18", "2025-11-25", V2026] {
        assert!(versions.contains(&json!(version)), "{body}");
    }
    assert_eq!(
        result["capabilities"],
        json!({"resources": {}, "tools": {}}),
        "only what is served is declared"
    );
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "membrain"
    );

    // And any request works on its own, with the caching hints of SEP-2549.
    let (status, session, body) = send(request(2, "tools/list", json!({}))).await;
    assert_eq!((status, session), (StatusCode::OK, None), "{body}");
    assert_eq!(body["id"], 2);
    assert_eq!(body["result"]["resultType"], "complete");
    assert!(body["result"]["ttlMs"].is_u64(), "{body}");
    assert!(
        body["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
}

#[tokio::test]
async fn headers_that_disagree_with_the_body_are_400_header_mismatch() {
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "ts_list_tables", "arguments": {}, "_meta": meta()}});
    for (headers, expected) in [
        (
            vec![
                ("mcp-protocol-version", V2026),
                ("mcp-method", "tools/list"),
            ],
            "Mcp-Method",
        ),
        (
            vec![
                ("mcp-protocol-version", V2026),
                ("mcp-method", "tools/call"),
                ("mcp-name", "ts_latest"),
            ],
            "Mcp-Name",
        ),
        (
            vec![("mcp-protocol-version", V2026)],
            "missing required Mcp-Method",
        ),
        (
            vec![
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "ts_list_tables"),
            ],
            "MCP-Protocol-Version",
        ),
    ] {
        let (status, _, body) = send(post(&headers, &call)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{headers:?}: {body}");
        assert_eq!(body["error"]["code"], -32020, "{headers:?}: {body}");
        assert_eq!(body["id"], 3, "the request's id: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{headers:?}: {message}");
    }

    // With matching headers, the call runs.
    let (status, _, body) = send(request(
        4,
        "tools/call",
        json!({"name": "ts_list_tables", "arguments": {}}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");
}

#[tokio::test]
async fn request_meta_is_required_and_unknown_versions_are_named() {
    // No _meta: -32602 and 400.
    let (status, _, body) = send(post(
        &[
            ("mcp-protocol-version", V2026),
            ("mcp-method", "tools/list"),
        ],
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {}}),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        (body["id"].clone(), body["error"]["code"].clone()),
        (json!(5), json!(-32602))
    );

    // A version nobody speaks: -32022 with the versions this server does.
    let mut meta = meta();
    meta["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let (status, _, body) = send(post(
        &[
            ("mcp-protocol-version", "2099-01-01"),
            ("mcp-method", "tools/list"),
        ],
        &json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": {"_meta": meta}}),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["id"], 6);
    assert_eq!(body["error"]["code"], -32022, "{body}");
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .is_some_and(|versions| versions.contains(&json!(V2026))),
        "{body}"
    );
}

#[tokio::test]
async fn methods_removed_in_2026_07_28_are_404_method_not_found() {
    for (id, method) in [
        (7, "initialize"),
        (8, "ping"),
        (9, "logging/setLevel"),
        (10, "no/such/method"),
    ] {
        let (status, _, body) = send(request(id, method, json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {body}");
        assert_eq!(body["error"]["code"], -32601, "{method}: {body}");
        assert_eq!(body["id"], id, "{method}: {body}");
    }
}

/// SEP-2575: every error answer carries the request's JSON-RPC id, also the HTTP-level
/// refusals rmcp answers with `"id": null` and the gate's own.
#[tokio::test]
async fn http_level_refusals_carry_the_request_id() {
    let list = json!({"jsonrpc": "2.0", "id": "list-1", "method": "tools/list", "params": {"_meta": meta()}});
    let standard = [
        ("mcp-protocol-version", V2026),
        ("mcp-method", "tools/list"),
    ];

    // No text/event-stream in Accept: 406.
    let mut no_accept = post(&standard, &list);
    no_accept
        .headers_mut()
        .insert("accept", "application/json".parse().expect("a value"));
    // Not JSON by its Content-Type: 415.
    let mut not_json = post(&standard, &list);
    not_json
        .headers_mut()
        .insert("content-type", "text/plain".parse().expect("a value"));
    for (request, expected) in [
        (no_accept, StatusCode::NOT_ACCEPTABLE),
        (not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let (status, _, body) = send(request).await;
        assert_eq!(status, expected, "{body}");
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["id"], "list-1", "{body}");
        assert!(body["error"]["code"].is_i64(), "{body}");
    }

    // The gate's own refusal of a message that is not JSON-RPC 2.0 names the id it could read…
    let (status, _, body) = send(post(
        &standard,
        &json!({"jsonrpc": "1.0", "id": 11, "method": "tools/list"}),
    ))
    .await;
    assert_eq!(
        (status, body["id"].clone()),
        (StatusCode::BAD_REQUEST, json!(11)),
        "{body}"
    );
    assert_eq!(body["error"]["code"], -32600);

    // …and null when there is none to read (JSON-RPC 2.0: a parse error or an unusable id).
    for text in [
        "{not json",
        r#"{"jsonrpc":"1.0","id":{"an":"object"},"method":"x"}"#,
    ] {
        let mut request = post(&standard, &json!(null));
        *request.body_mut() = Body::from(text);
        let (status, _, body) = send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}: {body}");
        assert_eq!(body["id"], Value::Null, "{text}: {body}");
    }

    // A notification (no id) is accepted with 202 and no body to correct.
    let dir = tempfile::tempdir().expect("a directory");
    let router = router_with(
        &McpSettings::default(),
        direct_backend(dir.path()).await,
        CancellationToken::new(),
    )
    .expect("router");
    let response = router
        .oneshot(post(
            &[("mcp-protocol-version", V2026), ("mcp-method", "notifications/initialized")],
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized", "params": {"_meta": meta()}}),
        ))
        .await
        .unwrap_or_else(|never| match never {});
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}
