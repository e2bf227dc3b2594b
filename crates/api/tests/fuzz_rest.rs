//! `fuzz_rest_bodies`: arbitrary JSON bodies, query strings and path segments to every
//! `/api/v1` route, with a valid key, through the real router over a SQLite store, without a
//! socket. The contract: never a panic, a hang or a 5xx, and every refusal in the
//! `{"error": {"code", "message"}}` shape. What the messages say is the routes' business.
//!
//! `PROPTEST_CASES=100000 cargo test -p membrain-api fuzz_` runs it longer; a failure prints
//! the smallest request that still fails.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use membrain_api::ingest::IngestWorker;
use membrain_api::{ApiSettings, AppState, Semantic, router};
use membrain_auth::{ApiKey, StaticKey};
use membrain_embed::{EmbedError, Embedder};
use membrain_memory::TenantId;
use membrain_store::testing::TestDatabase;
use membrain_store::{Backend, MemoryStore};
use membrain_timeseries::{ReadLimits, WriteLimits};
use membrain_ts_embedded::{EmbeddedOptions, EmbeddedStore};
use membrain_ts_service::TimeSeriesService;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const KEY: &str = "mb_fuzz_rest_key_0123456789";

/// Words hashed into a unit vector: cheap, deterministic, and enough for search to rank with.
struct HashEmbedder;

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        "fuzz-hash-64"
    }

    fn dimensions(&self) -> usize {
        64
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut vector = vec![0.0f32; 64];
                for word in text.split_whitespace() {
                    let slot = word
                        .bytes()
                        .fold(7usize, |h, b| h.wrapping_mul(31) ^ b as usize);
                    vector[slot % 64] += 1.0;
                }
                let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1.0);
                vector.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

/// A route of `/api/v1`: its method, its path with `{}` where a segment goes, and the body
/// fields or query parameters it reads (so that many requests get past "unknown field").
#[derive(Debug, Clone, Copy)]
struct Route {
    method: &'static str,
    template: &'static str,
    fields: &'static [&'static str],
}

const fn route(
    method: &'static str,
    template: &'static str,
    fields: &'static [&'static str],
) -> Route {
    Route {
        method,
        template,
        fields,
    }
}

/// Every route of `/api/v1`.
const ROUTES: &[Route] = &[
    route(
        "POST",
        "/memories",
        &["content", "tags", "category", "ingestion_scope"],
    ),
    route("GET", "/memories/jobs/{}", &[]),
    route("GET", "/memories", &["limit", "cursor", "tag"]),
    route("GET", "/admin/keys", &[]),
    route("POST", "/admin/keys", &["tenant", "label"]),
    route("POST", "/admin/keys/{}/revoke", &[]),
    route(
        "POST",
        "/memories/search",
        &[
            "query",
            "k",
            "response_format",
            "keyword_filter",
            "scope_regex",
            "scope",
            "ranking",
            "full_scope",
        ],
    ),
    route("POST", "/memories/batch", &["memory_ids"]),
    route(
        "DELETE",
        "/memories/bulk",
        &["memory_id", "tags", "category"],
    ),
    route(
        "POST",
        "/memories/link",
        &["memory_id_1", "memory_id_2", "description"],
    ),
    route("POST", "/memories/unlink", &["memory_id_1", "memory_id_2"]),
    route("PUT", "/memories/{}", &["content", "tags"]),
    route("GET", "/memories/{}", &[]),
    route("GET", "/stats", &[]),
    route("GET", "/auth/whoami", &[]),
    route("GET", "/graph/path", &["from_id", "to_id"]),
    route("GET", "/graph/neighborhood", &["memory_id", "hops"]),
    route(
        "GET",
        "/graph/traverse",
        &[
            "start_memory_id",
            "query",
            "max_hops",
            "edge_similarity_threshold",
            "scope_regex",
        ],
    ),
    route("GET", "/ts/tables", &["database"]),
    route("GET", "/ts/tables/{}/{}", &[]),
    route("DELETE", "/ts/tables/{}/{}", &[]),
    route("PUT", "/ts/tables/{}/{}/retention", &["retention"]),
    route("POST", "/ts/tables/{}/{}/records", &["records"]),
    route(
        "POST",
        "/ts/tables/{}/{}/latest",
        &["dimensions", "measure"],
    ),
    route(
        "POST",
        "/ts/tables/{}/{}/range",
        &[
            "start",
            "end",
            "dimensions",
            "measure",
            "bin",
            "aggregate",
            "limit",
        ],
    ),
    route("POST", "/ts/query", &["sql"]),
];

/// Field and parameter names the routes read, so random values land where they are looked at.
const NAMES: &[&str] = &[
    "content",
    "tags",
    "category",
    "ingestion_scope",
    "query",
    "k",
    "response_format",
    "keyword_filter",
    "scope_regex",
    "scope",
    "full_scope",
    "ranking",
    "memory_ids",
    "memory_id",
    "memory_id_1",
    "memory_id_2",
    "description",
    "from_id",
    "to_id",
    "hops",
    "start_memory_id",
    "max_hops",
    "edge_similarity_threshold",
    "database",
    "sql",
    "records",
    "retention",
    "start",
    "end",
    "bin",
    "aggregate",
    "measure",
    "measures",
    "dimensions",
    "time",
    "limit",
];

#[derive(Clone)]
struct FuzzRequest {
    method: &'static str,
    path: String,
    query: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl fmt::Debug for FuzzRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FuzzRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("content_type", &self.content_type)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// Ids: of memories and jobs that exist, and ones that do not or cannot.
fn id(known: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(known),
        1 => Just("0190a5b2-7c3e-7000-8000-000000000000".to_owned()),
        1 => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        1 => "[a-z0-9_-]{0,12}",
    ]
}

/// What fields mostly hold: ids, words, sentences and small numbers.
fn scalar(known: Vec<String>) -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => id(known).prop_map(Value::from),
        2 => prop::sample::select(vec![
            "What does the user prefer?",
            "dark mode",
            "tagged",
            "tagged,other",
            "raw",
            "both",
            "30d",
            "now-1h",
            "SELECT * FROM transit.bus",
        ])
        .prop_map(Value::from),
        2 => "[a-z ]{1,30}".prop_map(Value::from),
        1 => (0i64..20).prop_map(Value::from),
        1 => (0.0f64..1.0).prop_map(|f| json!(f)),
    ]
}

fn json_value(known: Vec<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => prop::sample::select(vec![0i64, 1, -1, 5, 100, 101, 10_000, i64::MAX])
            .prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| json!(f)),
        1 => "\\PC{0,24}".prop_map(Value::from),
        2 => id(known).prop_map(Value::from),
        // Regexes, times, spans and SQL, well-formed and not.
        1 => prop::sample::select(vec![
            "(a+)+$",
            "[",
            ".*",
            "^x",
            "tagged",
            "now",
            "now-1h",
            "2026-01-01T00:00:00Z",
            "1m",
            "30d",
            "avg",
            "SELECT * FROM a.b",
            "SELECT count(*) FROM transit.bus WHERE time > ago(1h)",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(prop::sample::select(NAMES), inner, 0..6).prop_map(|map| {
                Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// A value of the type `name` usually holds.
fn value_for(name: &'static str, known: Vec<String>) -> BoxedStrategy<Value> {
    match name {
        "records" => prop::collection::vec(record(), 0..4)
            .prop_map(Value::from)
            .boxed(),
        "memory_ids" | "scope" => prop::collection::vec(scalar(known), 0..4)
            .prop_map(Value::from)
            .boxed(),
        "k" | "hops" | "max_hops" | "limit" => (0i64..12).prop_map(Value::from).boxed(),
        "full_scope" => any::<bool>().prop_map(Value::from).boxed(),
        "edge_similarity_threshold" => (0.0f64..1.0).prop_map(|f| json!(f)).boxed(),
        "memory_id" | "memory_id_1" | "memory_id_2" | "from_id" | "to_id" | "start_memory_id" => {
            id(known).prop_map(Value::from).boxed()
        }
        "content" | "query" | "description" | "category" | "sql" | "retention" | "measure"
        | "response_format" | "ranking" | "scope_regex" | "ingestion_scope" | "database" => {
            prop_oneof![
                3 => "[a-z ]{1,30}".prop_map(Value::from),
                2 => scalar(known),
            ]
            .boxed()
        }
        "dimensions" => prop::collection::btree_map("[a-z_]{1,8}", "[a-z0-9]{0,6}", 0..3)
            .prop_map(|map| json!(map))
            .boxed(),
        _ => scalar(known).boxed(),
    }
}

/// Every one of `fields` with a value of its usual type: requests that get past the shape
/// checks to the routes' own.
fn full_object(
    fields: &'static [&'static str],
    known: Vec<String>,
) -> impl Strategy<Value = Value> {
    let values: Vec<BoxedStrategy<Value>> = fields
        .iter()
        .map(|name| value_for(name, known.clone()))
        .collect();
    values.prop_map(move |values| {
        Value::Object(
            fields
                .iter()
                .zip(values)
                .map(|(name, value)| ((*name).to_owned(), value))
                .collect(),
        )
    })
}

/// An object of some of `fields` (or of any names), with values of any type.
fn object_of(fields: &'static [&'static str], known: Vec<String>) -> impl Strategy<Value = Value> {
    let names: Vec<&'static str> = if fields.is_empty() {
        NAMES.to_vec()
    } else {
        fields.to_vec()
    };
    let value = prop_oneof![
        4 => scalar(known.clone()),
        2 => json_value(known.clone()),
        1 => prop::collection::vec(record(), 0..4).prop_map(Value::from),
    ];
    let some = prop::collection::btree_map(prop::sample::select(names), value, 0..6)
        .prop_map(|map| Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    prop_oneof![
        1 => full_object(fields, known.clone()),
        // The first two fields are what most routes need; alone, they are a likely valid call.
        1 => full_object(&fields[..fields.len().min(2)], known),
        1 => some,
    ]
}

/// A time-series record, often well formed.
fn record() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just(json!("now")),
            Just(json!("2026-01-01T00:00:00Z")),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
        ],
        prop::collection::btree_map("[a-z_]{1,8}", "[a-z0-9]{0,6}", 0..3),
        prop::collection::btree_map(
            "[a-z_]{1,8}",
            prop_oneof![
                any::<f64>().prop_map(|f| json!(f)),
                any::<i64>().prop_map(Value::from),
                any::<bool>().prop_map(Value::from),
                "\\PC{0,8}".prop_map(Value::from),
            ],
            0..3,
        ),
    )
        .prop_map(|(time, dimensions, measures)| {
            json!({ "time": time, "dimensions": dimensions, "measures": measures })
        })
}

fn body(fields: &'static [&'static str], known: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => object_of(fields, known.clone()).prop_map(|v| v.to_string().into_bytes()),
        2 => object_of(&[], known.clone()).prop_map(|v| v.to_string().into_bytes()),
        2 => json_value(known).prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..128),
        1 => Just(Vec::new()),
        1 => (1usize..5_000).prop_map(|depth| {
            format!("{}1{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
        }),
    ]
}

/// A path segment, percent-encoded as a client would send it.
fn segment(known: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => id(known),
        2 => "[a-z0-9_]{3,16}",
        1 => prop::sample::select(vec!["mem_0000", "..", ".", "%00", "%2F", "%FF", "%", "transit"])
            .prop_map(str::to_owned),
        1 => "\\PC{1,12}".prop_map(|s| percent_encode(&s)),
        1 => (1usize..400).prop_map(|n| "a".repeat(n)),
    ]
}

fn query(fields: &'static [&'static str], known: Vec<String>) -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = if fields.is_empty() {
        NAMES.to_vec()
    } else {
        fields.to_vec()
    };
    let text = |value: Value| match value {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let pair = (
        prop_oneof![
            6 => prop::sample::select(names).prop_map(str::to_owned),
            2 => prop::sample::select(NAMES).prop_map(str::to_owned),
            1 => "\\PC{0,8}",
        ],
        prop_oneof![
            3 => json_value(known.clone()).prop_map(text),
            1 => "\\PC{0,16}",
        ],
    )
        .prop_map(|(name, value)| format!("{}={}", percent_encode(&name), percent_encode(&value)));
    let full = prop_oneof![
        full_object(fields, known.clone()),
        full_object(&fields[..fields.len().min(2)], known.clone()),
    ]
    .prop_map(move |object| {
        let Value::Object(map) = object else {
            return String::new();
        };
        map.into_iter()
            .map(|(name, value)| {
                format!("{}={}", percent_encode(&name), percent_encode(&text(value)))
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    prop_oneof![
        3 => full,
        3 => prop::collection::vec(pair, 0..8).prop_map(|pairs| pairs.join("&")),
        1 => "[A-Za-z0-9=&%+._~-]{0,30}",
    ]
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn request(known: Vec<String>) -> impl Strategy<Value = FuzzRequest> {
    prop::sample::select(ROUTES).prop_flat_map(move |route| {
        // Bulk deletes name memories that do not exist, or the fuzz would soon have deleted
        // every seeded one and only ever meet 404s after.
        let known = if route.method == "DELETE" && route.template == "/memories/bulk" {
            vec!["0190a5b2-7c3e-7000-8000-0000000000ff".to_owned()]
        } else {
            known.clone()
        };
        (
            Just(route),
            prop::collection::vec(segment(known.clone()), 2),
            query(route.fields, known.clone()),
            prop_oneof![
                8 => Just(Some("application/json")),
                1 => Just(None),
                1 => Just(Some("text/plain")),
            ],
            body(route.fields, known.clone()),
        )
            .prop_map(|(route, segments, query, content_type, body)| {
                let mut path = format!("/api/v1{}", route.template);
                for segment in &segments {
                    path = path.replacen("{}", segment, 1);
                }
                FuzzRequest {
                    method: route.method,
                    path,
                    query,
                    content_type,
                    body,
                }
            })
    })
}

fn build(request: &FuzzRequest) -> Request<Body> {
    let uri = if request.query.is_empty() {
        request.path.clone()
    } else {
        format!("{}?{}", request.path, request.query)
    };
    let mut builder = Request::builder()
        .method(request.method)
        .uri(uri)
        .header("x-api-key", KEY);
    if let Some(content_type) = request.content_type {
        builder = builder.header("content-type", content_type);
    }
    builder
        .body(Body::from(request.body.clone()))
        .expect("percent-encoded paths and queries make a valid request")
}

/// Never a 5xx; every refusal `{"error": {"code", "message"}}`.
fn check_answer(status: StatusCode, body: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    if status.is_server_error() {
        return Err(format!("a {status}: {text}"));
    }
    if status.is_success() {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("a {status} whose body is not JSON ({e}): {text:?}"))?;
    let error = &value["error"];
    if !(error["code"].is_string() && error["message"].is_string()) {
        return Err(format!("a {status} without the error shape: {value}"));
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

/// The router over a fresh store, and an ingest worker for it (not yet running).
async fn fuzz_router(
    database: &TestDatabase,
    series_dir: &std::path::Path,
) -> (Router, IngestWorker) {
    let store: Arc<dyn MemoryStore> = Arc::new(database.store().await);
    let series = EmbeddedStore::open(series_dir, EmbeddedOptions::default())
        .await
        .expect("open the embedded time-series store");
    let key = ApiKey::new(KEY).expect("a key");
    let tenant = TenantId::parse("fuzz").expect("a tenant");
    let settings = ApiSettings::default();
    let semantic = Arc::new(Semantic::new(Arc::new(HashEmbedder), None));
    let mut state = AppState::new(
        store.clone(),
        Arc::new(StaticKey::new(&key, tenant)),
        semantic.clone(),
        &settings,
    );
    state.timeseries = Some(Arc::new(TimeSeriesService::new(
        Arc::new(series),
        WriteLimits::default(),
        ReadLimits::default(),
    )));
    let worker = IngestWorker::new(
        store,
        semantic,
        state.ingest.clone(),
        settings.job_lease,
        Duration::from_millis(20),
        state.limits.clone(),
    );
    (router(state, &settings), worker)
}

async fn answer(router: &Router, request: Request<Body>) -> Result<(StatusCode, Vec<u8>), String> {
    let response = tokio::time::timeout(Duration::from_secs(20), router.clone().oneshot(request))
        .await
        .map_err(|_| "no answer within 20 s".to_owned())?
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .map_err(|e| format!("the body could not be read: {e}"))?;
    Ok((status, body.to_vec()))
}

#[test]
fn fuzz_rest_bodies() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let database = runtime.block_on(TestDatabase::new(Backend::Sqlite));
    let series_dir = tempfile::tempdir().expect("a directory for time series");
    let (router, worker) = runtime.block_on(fuzz_router(&database, series_dir.path()));
    // A few memories, stored by an ingest worker, so routes that take ids find some.
    let stop_worker = CancellationToken::new();
    runtime.spawn(worker.run(stop_worker.clone()));
    let mut known = Vec::new();
    for content in [
        "The user prefers dark mode",
        "Billing runs on PostgreSQL",
        "The team meets on Tuesdays",
    ] {
        let request = Request::post("/api/v1/memories")
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(Body::from(
                json!({ "content": content, "tags": ["seed"] }).to_string(),
            ))
            .expect("a request");
        let (status, body) = runtime
            .block_on(answer(&router, request))
            .expect("an answer");
        assert!(status.is_success(), "seeding answered {status}");
        let accepted: Value = serde_json::from_slice(&body).expect("JSON");
        let job_id = accepted["job_id"].as_str().expect("a job id").to_owned();
        let job = runtime.block_on(completed_job(&router, &job_id));
        collect_ids(&job["result"], &mut known);
        known.push(job_id);
    }
    let mut runner = TestRunner::new(config(500));
    let result = runner.run(&request(known), |input| {
        let (status, body) = runtime
            .block_on(answer(&router, build(&input)))
            .map_err(TestCaseError::fail)?;
        check_answer(status, &body).map_err(TestCaseError::fail)
    });
    stop_worker.cancel();
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// Waits for an ingest job to finish and answers its view.
async fn completed_job(router: &Router, job_id: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let request = Request::get(format!("/api/v1/memories/jobs/{job_id}"))
                .header("x-api-key", KEY)
                .body(Body::empty())
                .expect("a request");
            let (_, body) = answer(router, request).await.expect("an answer");
            let job: Value = serde_json::from_slice(&body).expect("JSON");
            match job["status"].as_str() {
                Some("completed") => return job,
                Some("failed") => panic!("seeding failed: {job}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("the seed memories are stored")
}

/// Every UUID-shaped string in `value`.
fn collect_ids(value: &Value, ids: &mut Vec<String>) {
    match value {
        Value::String(text) if text.len() == 36 && text.matches('-').count() == 4 => {
            ids.push(text.clone());
        }
        Value::Array(items) => items.iter().for_each(|item| collect_ids(item, ids)),
        Value::Object(map) => map.values().for_each(|item| collect_ids(item, ids)),
        _ => {}
    }
}

#[test]
fn the_contract_check_tells_good_answers_from_bad() {
    let ok = |status: u16, body: &str| {
        check_answer(
            StatusCode::from_u16(status).expect("status"),
            body.as_bytes(),
        )
    };
    assert!(ok(200, "{}").is_ok());
    assert!(ok(422, r#"{"error":{"code":"invalid_fields","message":"m"}}"#).is_ok());
    assert!(ok(405, "").is_err());
    assert!(ok(400, r#"{"error":"text"}"#).is_err());
    assert!(ok(503, r#"{"error":{"code":"unavailable","message":"m"}}"#).is_err());
}
