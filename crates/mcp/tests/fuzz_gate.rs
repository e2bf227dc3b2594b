//! `fuzz_jsonrpc_gate`: arbitrary requests through the whole MCP router (gate, rmcp, the `ts_*`
//! tools over an embedded store), without a socket. Whatever arrives, the answer is a normal MCP
//! answer, a JSON-RPC error, or a `{"error": {"code", "message"}}` object; never a panic, a hang,
//! or a 5xx other than the documented 503 `unavailable` (the key source cannot answer).
//!
//! `PROPTEST_CASES=100000 cargo test -p membrain-mcp fuzz_` runs it longer; a failure prints
//! the smallest request that still fails.

use std::fmt;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use membrain_mcp::{AllowedHosts, McpSettings, router_with};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

mod support;

use support::{UNCHECKABLE_KEY, VALID_KEY, direct_backend};

/// One request, shown readably when it fails.
#[derive(Clone)]
struct FuzzRequest {
    method: &'static str,
    path: &'static str,
    host: Option<String>,
    origin: Option<String>,
    key: Option<(&'static str, String)>,
    accept: Option<String>,
    content_type: Option<String>,
    protocol_version: Option<String>,
    body: Vec<u8>,
}

impl fmt::Debug for FuzzRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FuzzRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("host", &self.host)
            .field("origin", &self.origin)
            .field("key", &self.key)
            .field("accept", &self.accept)
            .field("content_type", &self.content_type)
            .field("protocol_version", &self.protocol_version)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

fn header_text() -> impl Strategy<Value = String> {
    "[ -~]{0,40}"
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{0,10}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Objects that look like JSON-RPC, with each field sometimes missing or of the wrong type.
fn jsonrpc_message() -> impl Strategy<Value = Value> {
    let version = prop_oneof![
        10 => Just(Some(json!("2.0"))),
        1 => Just(None),
        1 => json_value().prop_map(Some),
    ];
    let id = prop_oneof![
        Just(None),
        any::<i64>().prop_map(|i| Some(json!(i))),
        "[a-z0-9-]{0,12}".prop_map(|s| Some(json!(s))),
        json_value().prop_map(Some),
    ];
    let method = prop_oneof![
        4 => Just(Some(json!("tools/call"))),
        4 => prop::sample::select(vec![
            "initialize",
            "notifications/initialized",
            "ping",
            "tools/list",
            "tools/call",
            "resources/list",
            "resources/read",
            "resources/templates/list",
            "prompts/list",
            "server/discover",
            "logging/setLevel",
            "completion/complete",
        ])
        .prop_map(|m| Some(json!(m))),
        1 => "\\PC{0,20}".prop_map(|m| Some(json!(m))),
        1 => json_value().prop_map(Some),
        1 => Just(None),
    ];
    let tool = prop::sample::select(vec![
        "ts_list_tables",
        "ts_describe_table",
        "ts_write_records",
        "ts_latest",
        "ts_range",
        "ts_query",
        "add_memory",
        "no_such_tool",
    ]);
    let arguments = prop::collection::btree_map(
        prop::sample::select(vec![
            "database",
            "table",
            "records",
            "sql",
            "start",
            "end",
            "bin",
            "aggregate",
            "measure",
            "dimensions",
            "limit",
            "content",
            "x",
        ]),
        json_value(),
        0..6,
    )
    .prop_map(|map| Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    let params = prop_oneof![
        1 => Just(None),
        1 => json_value().prop_map(Some),
        4 => (tool, arguments).prop_map(|(name, arguments)| Some(json!({
            "name": name, "arguments": arguments
        }))),
        1 => Just(Some(json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "fuzz", "version": "1"},
        }))),
    ];
    let extra = prop::option::of(("[a-z]{1,8}", json_value()));
    (version, id, method, params, extra).prop_map(|(version, id, method, params, extra)| {
        let mut message = serde_json::Map::new();
        for (name, value) in [
            ("jsonrpc", version),
            ("id", id),
            ("method", method),
            ("params", params),
        ] {
            if let Some(value) = value {
                message.insert(name.to_owned(), value);
            }
        }
        if let Some((name, value)) = extra {
            message.insert(name, value);
        }
        Value::Object(message)
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..256),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        12 => jsonrpc_message().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(jsonrpc_message(), 0..4)
            .prop_map(|batch| Value::from(batch).to_string().into_bytes()),
        // Deep nesting: the parser must refuse it, not overflow its stack.
        1 => (1usize..20_000, any::<bool>()).prop_map(|(depth, arrays)| {
            let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
            format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes()
        }),
    ]
}

fn request() -> impl Strategy<Value = FuzzRequest> {
    let method = prop_oneof![
        16 => Just("POST"),
        1 => Just("GET"),
        1 => prop::sample::select(vec!["DELETE", "PUT", "OPTIONS", "PATCH", "HEAD"]),
    ];
    let path = prop_oneof![
        16 => Just("/mcp"),
        1 => Just("/health"),
        1 => prop::sample::select(vec!["/", "/mcp/", "/other", "/MCP"]),
    ];
    let host = prop_oneof![
        12 => Just(Some("localhost:8100".to_owned())),
        1 => Just(Some("127.0.0.1".to_owned())),
        1 => Just(Some("evil.example".to_owned())),
        1 => Just(None),
        1 => header_text().prop_map(Some),
    ];
    let origin = prop_oneof![
        16 => Just(None),
        1 => Just(Some("http://localhost:3000".to_owned())),
        1 => Just(Some("https://evil.example".to_owned())),
        1 => header_text().prop_map(Some),
    ];
    let key = prop_oneof![
        14 => Just(Some(("x-api-key", VALID_KEY.to_owned()))),
        1 => Just(Some(("authorization", format!("Bearer {VALID_KEY}")))),
        1 => Just(Some(("x-api-key", UNCHECKABLE_KEY.to_owned()))),
        1 => Just(None),
        1 => header_text().prop_map(|k| Some(("x-api-key", k))),
        1 => header_text().prop_map(|k| Some(("authorization", k))),
    ];
    let accept = prop_oneof![
        16 => Just(Some("application/json, text/event-stream".to_owned())),
        1 => Just(None),
        1 => header_text().prop_map(Some),
    ];
    let content_type = prop_oneof![
        16 => Just(Some("application/json".to_owned())),
        1 => Just(None),
        1 => header_text().prop_map(Some),
    ];
    let protocol_version = prop_oneof![
        8 => Just(None),
        2 => prop::sample::select(vec!["2025-06-18", "2025-11-25", "2026-07-28"])
            .prop_map(|v| Some(v.to_owned())),
        1 => header_text().prop_map(Some),
    ];
    (
        method,
        path,
        host,
        origin,
        key,
        accept,
        content_type,
        protocol_version,
        body(),
    )
        .prop_map(
            |(method, path, host, origin, key, accept, content_type, protocol_version, body)| {
                FuzzRequest {
                    method,
                    path,
                    host,
                    origin,
                    key,
                    accept,
                    content_type,
                    protocol_version,
                    body,
                }
            },
        )
}

fn build(request: &FuzzRequest) -> Request<Body> {
    let mut builder = Request::builder().method(request.method).uri(request.path);
    let headers = [
        ("host", &request.host),
        ("origin", &request.origin),
        ("accept", &request.accept),
        ("content-type", &request.content_type),
        ("mcp-protocol-version", &request.protocol_version),
    ];
    for (name, value) in headers {
        if let Some(value) = value {
            builder = builder.header(name, value.as_str());
        }
    }
    if let Some((name, value)) = &request.key {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Body::from(request.body.clone()))
        .expect("printable header values make a valid request")
}

/// What every answer must be. (An answer to HEAD has no body by definition: only its status
/// is checked.)
fn check_answer(method: &str, status: StatusCode, body: &[u8]) -> Result<(), String> {
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        return Err(format!("a {status}"));
    }
    if status.is_success() || method == "HEAD" {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "a {status} whose body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    })?;
    let error = &value["error"];
    let rest_shape = error["code"].is_string() && error["message"].is_string();
    let jsonrpc_shape =
        value["jsonrpc"] == "2.0" && error["code"].is_i64() && error["message"].is_string();
    if !(rest_shape || jsonrpc_shape) {
        return Err(format!("a {status} without an error object: {value}"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE && error["code"] != "unavailable" {
        return Err(format!("an undocumented 503: {value}"));
    }
    Ok(())
}

/// Proptest's configuration (`PROPTEST_CASES` and the rest from the environment), with fewer
/// cases by default so the suite stays quick in a debug build.
fn config(default_cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    // Failures print their smallest input; nothing is written next to the sources.
    config.failure_persistence = None;
    config
}

async fn fuzz_router(dir: &std::path::Path) -> Router {
    let settings = McpSettings {
        allowed_hosts: AllowedHosts::local(),
        ..McpSettings::default()
    };
    router_with(
        &settings,
        direct_backend(dir).await,
        CancellationToken::new(),
    )
    .expect("the router")
}

#[test]
fn fuzz_jsonrpc_gate() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a directory for the store");
    let router = runtime.block_on(fuzz_router(dir.path()));
    let mut runner = TestRunner::new(config(1000));
    let result = runner.run(&request(), |input| {
        let method = input.method;
        let router = router.clone();
        let answer = runtime.block_on(async move {
            let response =
                tokio::time::timeout(Duration::from_secs(20), router.oneshot(build(&input)))
                    .await
                    .map_err(|_| "no answer within 20 s".to_owned())?
                    .unwrap_or_else(|never| match never {});
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 16 << 20)
                .await
                .map_err(|e| format!("the body could not be read: {e}"))?;
            Ok::<_, String>((status, body))
        });
        let (status, body) = answer.map_err(TestCaseError::fail)?;
        check_answer(method, status, &body).map_err(TestCaseError::fail)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

#[test]
fn the_contract_check_tells_good_answers_from_bad() {
    let ok = |status: u16, body: &str| {
        check_answer(
            "POST",
            StatusCode::from_u16(status).expect("status"),
            body.as_bytes(),
        )
    };
    assert!(ok(200, "anything").is_ok());
    assert!(ok(202, "").is_ok());
    assert!(ok(401, r#"{"error":{"code":"unauthorized","message":"m"}}"#).is_ok());
    assert!(
        ok(
            400,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"m"}}"#
        )
        .is_ok()
    );
    assert!(ok(503, r#"{"error":{"code":"unavailable","message":"m"}}"#).is_ok());
    assert!(ok(415, "Unsupported Media Type").is_err());
    assert!(check_answer("HEAD", StatusCode::NOT_FOUND, b"").is_ok());
    assert!(ok(400, r#"{"error":"text"}"#).is_err());
    assert!(ok(500, r#"{"error":{"code":"internal","message":"m"}}"#).is_err());
    assert!(ok(503, r#"{"error":{"code":"other","message":"m"}}"#).is_err());
}
