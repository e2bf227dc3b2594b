//! `run` end to end, as Lambda runs it: this binary puts the key map in a moto secret, serves a
//! fake Lambda Runtime API, and starts itself again as the function (`run` over
//! `AuthorizerSettings::from_env`, configured only through environment variables). The function
//! takes each fixture event from `/invocation/next` and must post back the exact answer.
//!
//! A custom `main` (`harness = false`): the same binary is both the test and the function.

mod support;

use std::collections::{HashMap, VecDeque};
use std::process::{Child, Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use membrain_authorizer::{AuthorizerSettings, run};
use membrain_aws::testing::MotoServer;
use serde_json::Value;
use tokio::sync::mpsc;

const TEST_NAME: &str = "run_answers_lambda_invocations_as_the_fixtures_expect";
/// Set in the child: run as the Lambda function.
const ROLE_VAR: &str = "MEMBRAIN_AUTHORIZER_TEST_ROLE";

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::var_os(ROLE_VAR).is_some() {
        // The function: what `membrain authorizer` does.
        let result = runtime.block_on(async { run(AuthorizerSettings::from_env()?).await });
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("authorizer: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Honour `cargo test -- --list` and name filters, as the standard harness does.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        println!("{TEST_NAME}: test");
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|arg| !arg.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| TEST_NAME.contains(f.as_str())) {
        println!("\nrunning 0 tests\n");
        return ExitCode::SUCCESS;
    }
    println!("\nrunning 1 test");
    runtime.block_on(run_answers_lambda_invocations_as_the_fixtures_expect());
    println!("test {TEST_NAME} ... ok\n\ntest result: ok. 1 passed; 0 failed\n");
    ExitCode::SUCCESS
}

/// What the function posted back for one invocation.
#[derive(Debug)]
struct Posted {
    request_id: String,
    kind: &'static str,
    body: Value,
}

struct FakeRuntimeApi {
    events: Mutex<VecDeque<(String, Value)>>,
    posted: mpsc::UnboundedSender<Posted>,
}

async fn next_invocation(State(api): State<Arc<FakeRuntimeApi>>) -> impl IntoResponse {
    let next = api.events.lock().expect("events lock").pop_front();
    let Some((request_id, event)) = next else {
        // Lambda holds `next` open until an event comes; none will: the test kills the function.
        let never: std::convert::Infallible = std::future::pending().await;
        match never {}
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        + Duration::from_secs(30);
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", request_id),
        (
            "lambda-runtime-deadline-ms",
            deadline.as_millis().to_string(),
        ),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:membrain-authorizer".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-68c2a7f1-3f1c5d0a6b2e4c7d8e9f0a1b;Sampled=0".to_owned(),
        ),
    ] {
        headers.insert(name, value.parse().expect("header value"));
    }
    (headers, Json(event))
}

/// Keeps what the function posted. Bodies are read as bytes: the runtime sends no content type.
fn record(api: &FakeRuntimeApi, request_id: String, kind: &'static str, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let _ = api.posted.send(Posted {
        request_id,
        kind,
        body,
    });
    StatusCode::ACCEPTED
}

async fn invocation_response(
    State(api): State<Arc<FakeRuntimeApi>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&api, request_id, "response", body)
}

async fn invocation_error(
    State(api): State<Arc<FakeRuntimeApi>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&api, request_id, "error", body)
}

async fn init_error(State(api): State<Arc<FakeRuntimeApi>>, body: Bytes) -> StatusCode {
    record(&api, "init".to_owned(), "init error", body)
}

/// Kills the function when the test ends, however it ends.
struct Function(Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_answers_lambda_invocations_as_the_fixtures_expect() {
    let moto = MotoServer::start();
    support::secret_in(&moto).await;

    let cases = support::cases();
    let expected: HashMap<String, Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, answer))| (format!("invocation-{i}"), answer.clone()))
        .collect();
    let (posted, mut answers) = mpsc::unbounded_channel();
    let api = Arc::new(FakeRuntimeApi {
        events: Mutex::new(
            cases
                .iter()
                .enumerate()
                .map(|(i, (name, _))| (format!("invocation-{i}"), support::fixture(name)))
                .collect(),
        ),
        posted,
    });
    let router = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake runtime API");
    let runtime_api = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });

    // Only what Lambda and the function's configuration would set.
    let mut function = Function(
        Command::new(std::env::current_exe().expect("this test binary"))
            .env(ROLE_VAR, "function")
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "membrain-authorizer")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_REGION", MotoServer::REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("MEMBRAIN_KEYS_SECRET", support::SECRET)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .spawn()
            .expect("start the function"),
    );

    let mut received = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while received.len() < expected.len() {
        if let Ok(Some(status)) = function.0.try_wait() {
            panic!("the function exited ({status}) after answering {received:?}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the function answered only {received:?} in 60 s"
        );
        if let Ok(Some(answer)) =
            tokio::time::timeout(Duration::from_millis(200), answers.recv()).await
        {
            assert_eq!(answer.kind, "response", "{answer:?}");
            received.insert(answer.request_id, answer.body);
        }
    }
    for (i, (name, _)) in cases.iter().enumerate() {
        let id = format!("invocation-{i}");
        assert_eq!(received.get(&id), expected.get(&id), "for {name}");
    }
}
