//! The MCP gate's order (Host and Origin, then the key, then the body) and the server's HTTP
//! limits, through the router and over a real socket.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use futures::Stream;
use membrain_http::HttpLimits;
use membrain_mcp::{AllowedHosts, McpServer, McpSettings, router_with};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

mod support;

use support::{UNCHECKABLE_KEY, VALID_KEY, direct_backend};

/// How long any wait may take before the test fails instead of hanging.
const GUARD: Duration = Duration::from_secs(30);

/// A body that never ends and notes whether anyone tried to read it.
struct EndlessBody {
    polled: Arc<AtomicBool>,
}

impl Stream for EndlessBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.polled.store(true, Ordering::SeqCst);
        Poll::Pending
    }
}

fn mcp_post(key: Option<&str>, body: Body) -> Request<Body> {
    let mut builder = Request::post("/mcp")
        .header("host", "localhost:8100")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    builder.body(body).expect("a request")
}

async fn json_of(response: axum::response::Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    serde_json::from_slice(&bytes).expect("JSON")
}

#[tokio::test]
async fn a_request_without_a_valid_key_is_refused_before_its_body_is_read() {
    let dir = tempfile::tempdir().expect("a directory");
    let router = router_with(
        &McpSettings::default(),
        direct_backend(dir.path()).await,
        CancellationToken::new(),
    )
    .expect("router");
    for (key, status, code) in [
        (None, StatusCode::UNAUTHORIZED, "unauthorized"),
        (
            Some("mb_not_a_key_anyone_has"),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            Some(UNCHECKABLE_KEY),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        ),
    ] {
        let polled = Arc::new(AtomicBool::new(false));
        let body = Body::from_stream(EndlessBody {
            polled: polled.clone(),
        });
        let response = tokio::time::timeout(GUARD, router.clone().oneshot(mcp_post(key, body)))
            .await
            .expect("answered without waiting for the body")
            .unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), status, "key {key:?}");
        assert_eq!(json_of(response).await["error"]["code"], code);
        assert!(
            !polled.load(Ordering::SeqCst),
            "the body was read for key {key:?}"
        );
    }

    // A body over the cap is still a 401 without a key, and a 413 with one.
    let oversized = || Body::from(vec![b' '; 2 * 1024 * 1024]);
    let response = router
        .clone()
        .oneshot(mcp_post(None, oversized()))
        .await
        .unwrap_or_else(|never| match never {});
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = router
        .clone()
        .oneshot(mcp_post(Some(VALID_KEY), oversized()))
        .await
        .unwrap_or_else(|never| match never {});
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A bad Host is refused before the key is even looked at.
    let request = Request::post("/mcp")
        .header("host", "evil.example")
        .body(Body::from_stream(EndlessBody {
            polled: Arc::new(AtomicBool::new(false)),
        }))
        .expect("a request");
    let response = router
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_of(response).await["error"]["code"], "host_not_allowed");
}

#[tokio::test]
async fn rmcp_refusals_come_back_as_json_rpc_errors() {
    let dir = tempfile::tempdir().expect("a directory");
    let router = router_with(
        &McpSettings::default(),
        direct_backend(dir.path()).await,
        CancellationToken::new(),
    )
    .expect("router");
    let request = Request::post("/mcp")
        .header("host", "localhost")
        .header("x-api-key", VALID_KEY)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
        .expect("a request");
    let response = router
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    let body = json_of(response).await;
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], -32600);
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(message.contains("text/event-stream"), "{message}");

    let response = router
        .oneshot(
            Request::post("/health")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .unwrap_or_else(|never| match never {});
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        json_of(response).await["error"]["code"],
        "method_not_allowed"
    );
}

#[tokio::test]
async fn any_host_is_explicit() {
    let dir = tempfile::tempdir().expect("a directory");
    let settings = McpSettings {
        allowed_hosts: AllowedHosts::Any,
        ..McpSettings::default()
    };
    let router = router_with(
        &settings,
        direct_backend(dir.path()).await,
        CancellationToken::new(),
    )
    .expect("router");
    let request = Request::post("/mcp")
        .header("host", "mcp.behind-a-balancer.example")
        .body(Body::empty())
        .expect("a request");
    let response = router
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    // Past the Host check, at the key check.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// Reads one `Content-Length` response off a raw connection: its status and body.
async fn read_answer(stream: &mut TcpStream) -> (u16, Value) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&buffer)
        );
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .expect("a content-length");
        if body.len() < length {
            continue;
        }
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        return (status, serde_json::from_str(&body[..length]).expect("JSON"));
    }
}

#[tokio::test]
async fn over_a_socket_the_key_is_checked_before_the_body_and_a_stalled_body_is_408() {
    let dir = tempfile::tempdir().expect("a directory");
    let server = McpServer::bind_with(
        McpSettings {
            listen: "127.0.0.1:0".parse().expect("address"),
            http: HttpLimits {
                body_timeout: Duration::from_secs(1),
                ..HttpLimits::default()
            },
            ..McpSettings::default()
        },
        direct_backend(dir.path()).await,
    )
    .await
    .expect("bind");
    let address = server.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(server.run_until_stopped(shutdown.clone()));

    // A megabyte announced, nothing sent, no key: answered at once.
    let mut keyless = TcpStream::connect(address).await.expect("connect");
    keyless
        .write_all(
            b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Accept: application/json, text/event-stream\r\nContent-Length: 1000000\r\n\r\n",
        )
        .await
        .expect("send a head");
    let (status, body) = tokio::time::timeout(GUARD, read_answer(&mut keyless))
        .await
        .expect("answered without the body");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );

    // With a key, a body that stalls is answered 408 in the error shape.
    let mut stalled = TcpStream::connect(address).await.expect("connect");
    stalled
        .write_all(
            format!(
                "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                 Accept: application/json, text/event-stream\r\nX-API-Key: {VALID_KEY}\r\n\
                 Content-Length: 100\r\n\r\n{{\"jsonrpc\""
            )
            .as_bytes(),
        )
        .await
        .expect("send part of a body");
    let (status, body) = tokio::time::timeout(GUARD, read_answer(&mut stalled))
        .await
        .expect("answered once the body stalled");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (408, Some("body_timeout"))
    );

    shutdown.cancel();
    tokio::time::timeout(GUARD, serving)
        .await
        .expect("stops")
        .expect("no panic")
        .expect("served");
}
