//! Every limit of `membrain_http::serve`, over real sockets with a hand-written HTTP/1.1 client
//! (a pooled client would hide which connection a request went over).
//!
//! Timeouts here are 1 s; the tests assert that a close or an answer happens, never how fast.
//! Each wait has a generous guard so a regression fails instead of hanging.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use membrain_http::{HttpLimits, HttpLimitsError, serve};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long any wait may take before the test fails instead of hanging.
const GUARD: Duration = Duration::from_secs(30);

struct TestServer {
    address: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), HttpLimitsError>>,
    /// `/slow` waits for this; `release` lets every waiting request finish.
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    entered: Notify,
    release: Notify,
}

impl TestServer {
    async fn start(limits: HttpLimits) -> Self {
        Self::start_with_grace(limits, Duration::from_secs(20)).await
    }

    async fn start_with_grace(limits: HttpLimits, grace: Duration) -> Self {
        let gate = Arc::new(Gate::default());
        let slow_gate = gate.clone();
        let router = Router::new()
            .route("/hello", get(|| async { "hello" }))
            .route(
                "/slow",
                get(move || {
                    let gate = slow_gate.clone();
                    async move {
                        gate.entered.notify_one();
                        gate.release.notified().await;
                        "done"
                    }
                }),
            )
            .route("/forever", get(std::future::pending::<&'static str>))
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, router, limits, shutdown.clone(), grace));
        Self {
            address,
            shutdown,
            task,
            gate,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).await.expect("connect")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let served = tokio::time::timeout(GUARD, self.task)
            .await
            .expect("the server stops within the guard")
            .expect("the server task does not panic");
        assert_eq!(served, Ok(()));
    }
}

fn limits() -> HttpLimits {
    HttpLimits {
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(60),
        max_connections: 64,
        max_concurrent_requests: 64,
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Reads one response with a `Content-Length` body; `None` when the server closed first.
async fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a content-length");
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    Some(Answer { status, head, body })
}

async fn ask(stream: &mut TcpStream, request: &str) -> Answer {
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    tokio::time::timeout(GUARD, read_answer(stream))
        .await
        .expect("an answer within the guard")
        .expect("an answer before the connection closed")
}

/// Waits until the server closes `stream` (end of stream or a reset).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(GUARD, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test]
async fn a_request_head_that_does_not_arrive_in_time_is_cut_off() {
    let server = TestServer::start(HttpLimits {
        header_timeout: Duration::from_secs(1),
        ..limits()
    })
    .await;
    // Slowloris: half a head, then nothing.
    let mut slow = server.connect().await;
    slow.write_all(b"GET /hello HTTP/1.1\r\nHost: te")
        .await
        .expect("send half a head");
    // And a connection that never sends a byte.
    let mut silent = server.connect().await;
    assert!(
        closed_by_server(&mut slow).await,
        "the half head is cut off"
    );
    assert!(closed_by_server(&mut silent).await, "the silent one too");
    // Others are served as before.
    let mut other = server.connect().await;
    assert_eq!(ask(&mut other, &get_request("/hello")).await.body, "hello");
    server.stop().await;
}

#[tokio::test]
async fn an_idle_connection_outlives_the_header_timeout_then_closes_at_the_idle_one() {
    let server = TestServer::start(HttpLimits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(5),
        ..limits()
    })
    .await;
    let mut connection = server.connect().await;
    assert_eq!(
        ask(&mut connection, &get_request("/hello")).await.status,
        200
    );
    // Idle for longer than the header timeout: hyper's own header timeout would have closed
    // the connection by now; the load balancer expects it open for its 60 s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ask(&mut connection, &get_request("/hello")).await.status,
        200
    );
    assert!(
        closed_by_server(&mut connection).await,
        "closed once idle for the idle timeout"
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let server = TestServer::start(HttpLimits {
        max_connections: 2,
        ..limits()
    })
    .await;
    // Two kept-alive connections fill the cap.
    let mut first = server.connect().await;
    let mut second = server.connect().await;
    assert_eq!(ask(&mut first, &get_request("/hello")).await.status, 200);
    assert_eq!(ask(&mut second, &get_request("/hello")).await.status, 200);
    // Many more connect (the kernel queues them) and ask; none is served while the cap holds.
    let mut waiting = Vec::new();
    for _ in 0..20 {
        let mut stream = server.connect().await;
        stream
            .write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        waiting.push(stream);
    }
    let early =
        tokio::time::timeout(Duration::from_millis(300), read_answer(&mut waiting[0])).await;
    assert!(early.is_err(), "answered beyond the cap: {early:?}");
    // One closes: the queued ones are served one after another (each closes after its answer).
    drop(first);
    for stream in &mut waiting {
        let answer = tokio::time::timeout(GUARD, read_answer(stream))
            .await
            .expect("served once a place is free")
            .expect("an answer");
        assert_eq!(answer.status, 200);
    }
    assert_eq!(ask(&mut second, &get_request("/hello")).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn requests_beyond_the_in_flight_cap_are_told_to_retry() {
    let server = TestServer::start(HttpLimits {
        max_concurrent_requests: 1,
        ..limits()
    })
    .await;
    let mut holder = server.connect().await;
    holder
        .write_all(get_request("/slow").as_bytes())
        .await
        .expect("send");
    tokio::time::timeout(GUARD, server.gate.entered.notified())
        .await
        .expect("the slow request is in progress");

    let mut other = server.connect().await;
    let busy = ask(&mut other, &get_request("/hello")).await;
    assert_eq!(busy.status, 503, "{busy:?}");
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert_eq!(busy.json()["error"]["code"], "busy");
    let message = busy.json()["error"]["message"]
        .as_str()
        .expect("a message")
        .to_owned();
    assert!(message.contains("(1)"), "{message}");

    server.gate.release.notify_one();
    let done = tokio::time::timeout(GUARD, read_answer(&mut holder))
        .await
        .expect("the slow request finishes")
        .expect("an answer");
    assert_eq!((done.status, done.body.as_str()), (200, "done"));
    assert_eq!(ask(&mut other, &get_request("/hello")).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_body_is_answered_408() {
    let server = TestServer::start(HttpLimits {
        body_timeout: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let mut stream = server.connect().await;
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .expect("send part of a body");
    let answer = tokio::time::timeout(GUARD, read_answer(&mut stream))
        .await
        .expect("answered within the guard")
        .expect("an answer");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.json()["error"]["code"], "body_timeout");

    // A whole body is read as usual.
    let mut stream = server.connect().await;
    let whole = ask(
        &mut stream,
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n0123456789",
    )
    .await;
    assert_eq!((whole.status, whole.body.as_str()), (200, "10"));
    server.stop().await;
}

#[tokio::test]
async fn a_request_past_its_deadline_is_stopped_and_answered_503() {
    let server = TestServer::start(HttpLimits {
        request_timeout: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let mut stream = server.connect().await;
    let answer = ask(&mut stream, &get_request("/forever")).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.json()["error"]["code"], "deadline_exceeded");
    assert!(answer.header("retry-after").is_none());
    // The connection carries on.
    assert_eq!(ask(&mut stream, &get_request("/hello")).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_requests_in_progress_finish_and_closes_idle_connections() {
    let server = TestServer::start(limits()).await;
    let mut idle = server.connect().await;
    assert_eq!(ask(&mut idle, &get_request("/hello")).await.status, 200);
    let mut busy = server.connect().await;
    busy.write_all(get_request("/slow").as_bytes())
        .await
        .expect("send");
    tokio::time::timeout(GUARD, server.gate.entered.notified())
        .await
        .expect("the slow request is in progress");

    server.shutdown.cancel();
    assert!(closed_by_server(&mut idle).await, "idle connections close");
    assert!(!server.task.is_finished(), "it waits for the request");
    server.gate.release.notify_one();
    let done = tokio::time::timeout(GUARD, read_answer(&mut busy))
        .await
        .expect("the request finishes")
        .expect("an answer");
    assert_eq!(done.status, 200);
    assert!(
        closed_by_server(&mut busy).await,
        "then its connection closes"
    );
    let address = server.address;
    server.stop().await;
    assert!(
        TcpStream::connect(address).await.is_err(),
        "nothing listens any more"
    );
}

#[tokio::test]
async fn shutdown_drops_what_is_still_running_after_the_grace_period() {
    let server = TestServer::start_with_grace(limits(), Duration::from_secs(1)).await;
    let mut stuck = server.connect().await;
    stuck
        .write_all(get_request("/slow").as_bytes())
        .await
        .expect("send");
    tokio::time::timeout(GUARD, server.gate.entered.notified())
        .await
        .expect("the slow request is in progress");
    // Never released: the grace period ends it.
    server.stop().await;
    let answer = tokio::time::timeout(GUARD, read_answer(&mut stuck))
        .await
        .expect("closed within the guard");
    assert!(answer.is_none(), "dropped without an answer: {answer:?}");
}

#[tokio::test]
async fn invalid_limits_are_refused_before_serving() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let served = serve(
        listener,
        Router::new(),
        HttpLimits {
            max_connections: 0,
            ..limits()
        },
        CancellationToken::new(),
        Duration::from_secs(1),
    )
    .await;
    let error = served.expect_err("zero connections");
    assert_eq!(
        error.to_string(),
        "the HTTP max_connections must be between 1 and 1000000 (it is 0)"
    );
}
