//! Time series end to end: the REST routes and the `ts_*` MCP tools over a real API (the
//! embedded store beside SQLite, the SQL store on PostgreSQL), bad input on every path, tenant
//! isolation, and the gateway profile (tools answered from the store, keys from a key file).

mod support;

use std::sync::Arc;
use std::time::Duration;

use membrain_auth::{FileKeyMap, KeyResolver, RefreshSettings, RefreshingKeys};
use membrain_mcp::{McpBackend, McpServer, McpSettings};
use membrain_store::Backend;
use membrain_timeseries::{Bin, Timestamp};
use reqwest::StatusCode;
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};
use support::*;
use tokio_util::sync::CancellationToken;

/// A ten-minute boundary about two hours ago (so 1m and 5m bins align with it); test records
/// live in the ten minutes after it.
fn origin() -> Timestamp {
    Timestamp::now()
        .plus_micros(-2 * 3_600_000_000)
        .bin_start(Bin::parse("10m").expect("bin"))
}

fn at(origin: Timestamp, seconds: i64) -> String {
    origin.plus_micros(seconds * 1_000_000).to_rfc3339()
}

/// Ten minutes of one bus every 30 s: speed 10, 11, … and a stop id.
fn bus_records(origin: Timestamp, bus: &str, line: &str) -> Vec<Value> {
    (0..20)
        .map(|i| {
            json!({
                "time": at(origin, i * 30),
                "dimensions": {"bus_id": bus, "line_id": line},
                "measures": {"speed": 10.0 + i as f64, "passenger_count": 5 + i, "next_stop_id": format!("S{:03}", i / 4)},
            })
        })
        .collect()
}

const BUSES: &str = "/ts/tables/transit/bus_position";

async fn rest_writes_reads_and_queries(backend: Backend) {
    let stack = TestStack::spawn(backend).await;
    let alice = stack.rest(&stack.key("alice").await);
    let origin = origin();
    let mut records = bus_records(origin, "B1", "L1");
    records.extend(bus_records(origin, "B2", "L2"));
    let (status, outcome) = alice
        .post(&format!("{BUSES}/records"), json!({ "records": records }))
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["records_ingested"], 40, "{outcome}");
    assert_eq!(outcome["table_created"], true);
    assert_eq!(outcome["rejected_records"], json!([]));

    let (status, tables) = alice.get("/ts/tables").await;
    assert_eq!(status, StatusCode::OK, "{tables}");
    assert_eq!(tables["tables"][0]["database"], "transit");
    assert_eq!(tables["tables"][0]["table"], "bus_position");
    let (_, filtered) = alice.get("/ts/tables?database=elsewhere").await;
    assert_eq!(filtered["tables"], json!([]));

    let (status, description) = alice.get(BUSES).await;
    assert_eq!(status, StatusCode::OK, "{description}");
    assert_eq!(description["row_count"], 40);
    assert_eq!(description["series_count"], 2);
    assert_eq!(description["dimensions"], json!(["bus_id", "line_id"]));
    assert_eq!(
        description["measures"],
        json!([
            {"name": "next_stop_id", "type": "varchar"},
            {"name": "passenger_count", "type": "bigint"},
            {"name": "speed", "type": "double"},
        ])
    );
    assert_eq!(description["earliest"], at(origin, 0));
    assert_eq!(description["latest"], at(origin, 570));

    let (status, latest) = alice
        .post(
            &format!("{BUSES}/latest"),
            json!({ "dimensions": {"bus_id": "B2"}, "measure": "speed" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    assert_eq!(latest["series"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        latest["series"][0]["dimensions"],
        json!({"bus_id": "B2", "line_id": "L2"})
    );
    assert_eq!(
        latest["series"][0]["points"][0],
        json!({"time": at(origin, 570), "measures": {"speed": 29.0}})
    );

    let (status, binned) = alice
        .post(
            &format!("{BUSES}/range"),
            json!({
                "start": at(origin, 0), "end": at(origin, 600), "dimensions": {"bus_id": "B1"},
                "measure": "speed", "bin": "5m", "aggregate": "max",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{binned}");
    assert_eq!(
        binned["series"][0]["points"],
        json!([
            {"time": at(origin, 0), "measures": {"speed": 19.0}},
            {"time": at(origin, 300), "measures": {"speed": 29.0}},
        ])
    );
    assert_eq!(binned["bin"], "5m");

    let (status, relative) = alice
        .post(
            &format!("{BUSES}/range"),
            json!({ "start": "now-3h", "end": "now", "aggregate": "count" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{relative}");
    assert_eq!(relative["series"].as_array().map(Vec::len), Some(2));
    assert_eq!(relative["series"][0]["points"][0]["measures"]["speed"], 20);

    let sql = "SELECT line_id, avg(speed) AS mean_speed, count(*) AS n FROM transit.bus_position \
               WHERE time >= ago(3h) GROUP BY line_id ORDER BY line_id";
    let (status, answer) = alice.post("/ts/query", json!({ "sql": sql })).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["rows"],
        json!([["L1", 19.5, 20], ["L2", 19.5, 20]]),
        "{answer}"
    );
    assert_eq!(answer["truncated"], false);

    let (status, retained) = alice
        .put(&format!("{BUSES}/retention"), json!({ "retention": "1h" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{retained}");
    assert_eq!(retained["retention"], "1h");
    assert_eq!(
        retained["row_count"], 0,
        "everything was older than an hour"
    );

    let (status, dropped) = alice.delete(BUSES).await;
    assert_eq!(status, StatusCode::OK, "{dropped}");
    let (status, gone) = alice.get(BUSES).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
}

async fn rest_bad_input_is_a_clear_error(backend: Backend) {
    let stack = TestStack::spawn(backend).await;
    let alice = stack.rest(&stack.key("alice").await);
    let origin = origin();
    let write = |records: Value| json!({ "records": records });
    let (status, _) = alice
        .post(
            &format!("{BUSES}/records"),
            write(json!(bus_records(origin, "B1", "L1"))),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Per-record problems: each rejected with its reason, the good record written.
    let future = Timestamp::now().plus_micros(86_400_000_000).to_rfc3339();
    let (status, outcome) = alice
        .post(
            &format!("{BUSES}/records"),
            write(json!([
                {"time": at(origin, 1000), "dimensions": {"bus_id": "B1", "line_id": "L1"}, "measures": {"speed": 12.5}},
                {"time": at(origin, 1010), "dimensions": {"bus_id": "B1"}, "measures": {}},
                {"time": "26/11/2026 14:00", "dimensions": {"bus_id": "B1"}, "measures": {"speed": 1.0}},
                {"time": future, "dimensions": {"bus_id": "B1"}, "measures": {"speed": 1.0}},
                {"time": at(origin, 1020), "dimensions": {"bus_id": "B1"}, "measures": {"speed": "fast"}},
                {"time": at(origin, 1030), "dimensions": {"bus_id": 7}, "measures": {"speed": 1.0}},
                "not a record",
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["records_ingested"], 1, "{outcome}");
    let reasons: Vec<(u64, String)> = outcome["rejected_records"]
        .as_array()
        .expect("rejections")
        .iter()
        .map(|r| {
            (
                r["record_index"].as_u64().unwrap_or(99),
                r["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let indexes: Vec<u64> = reasons.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [1, 2, 3, 4, 5, 6], "{outcome}");
    for (index, needle) in [
        (1, "no measures"),
        (2, "RFC 3339"),
        (3, "outside the time range"),
        (4, "double"),
        (5, "string"),
        (6, "object"),
    ] {
        let reason = &reasons
            .iter()
            .find(|(i, _)| *i == index)
            .expect("a reason")
            .1;
        assert!(reason.contains(needle), "record {index}: {reason}");
    }

    // A batch over the limit is refused whole: nothing written.
    let (_, before) = alice.get(BUSES).await;
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| json!({"time": at(origin, 2000 + i), "dimensions": {"bus_id": "B9"}, "measures": {"speed": 1.0}}))
        .collect();
    let (status, refused) = alice
        .post(&format!("{BUSES}/records"), write(json!(too_many)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["code"], "limit_exceeded");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("split"),
        "{refused}"
    );
    let (_, after) = alice.get(BUSES).await;
    assert_eq!(
        before["row_count"], after["row_count"],
        "a refused batch wrote nothing"
    );
    let (status, empty) = alice
        .post(&format!("{BUSES}/records"), write(json!([])))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{empty}");

    // Unknown tables and databases, bad names, bad ranges, bad bins.
    for path in [
        "/ts/tables/transit/nothing",
        "/ts/tables/nowhere/bus_position",
    ] {
        let (status, missing) = alice.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {missing}");
        assert!(
            missing["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("ts_list_tables"),
            "{missing}"
        );
        let (status, _) = alice.post(&format!("{path}/latest"), json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, bad_name) = alice.get("/ts/tables/transit/x;drop").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad_name}");
    let cases = [
        (
            json!({"start": "yesterday", "end": "now"}),
            "invalid_argument",
            "start",
        ),
        (
            json!({"start": "now", "end": "now-1h"}),
            "invalid_argument",
            "before end",
        ),
        (
            json!({"start": "now-30d", "end": "now", "bin": "1s"}),
            "limit_exceeded",
            "buckets",
        ),
        (
            json!({"start": "now-1h", "end": "now", "bin": "1 minute"}),
            "invalid_argument",
            "duration",
        ),
        (
            json!({"start": "now-1h", "end": "now", "aggregate": "median"}),
            "invalid_argument",
            "avg",
        ),
        (
            json!({"start": "now-1h", "end": "now", "measure": "spead"}),
            "invalid_argument",
            "speed",
        ),
        (
            json!({"start": "now-1h", "end": "now", "measure": "next_stop_id", "aggregate": "avg"}),
            "invalid_argument",
            "numeric",
        ),
        (
            json!({"start": "now-1h", "end": "now", "dimensions": {"bus_id": 1}}),
            "invalid_argument",
            "string",
        ),
    ];
    for (body, code, needle) in cases {
        let (status, error) = alice.post(&format!("{BUSES}/range"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(needle), "{body}: {message}");
    }
    let (status, unknown_field) = alice
        .post(
            &format!("{BUSES}/range"),
            json!({"start": "now-1h", "end": "now", "limit": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{unknown_field}");

    // Queries that write or reach outside the caller's tables are refused.
    for sql in [
        "DELETE FROM transit.bus_position",
        "DROP TABLE transit.bus_position",
        "INSERT INTO transit.bus_position VALUES (1)",
        "SELECT * FROM transit.bus_position; DELETE FROM transit.bus_position",
        "SELECT * FROM bob.transit.bus_position",
        "SELECT * FROM information_schema.tables",
        "SELECT pg_sleep(10) FROM transit.bus_position",
    ] {
        let (status, refused) = alice.post("/ts/query", json!({ "sql": sql })).await;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST,
            "{sql}: {status} {refused}"
        );
        assert!(
            refused["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{refused}"
        );
    }
    let (status, refused) = alice
        .post(
            "/ts/query",
            json!({ "sql": "DELETE FROM transit.bus_position" }),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("query_refused"))
    );
    let (_, still) = alice.get(BUSES).await;
    assert_eq!(
        still["row_count"], after["row_count"],
        "no query wrote anything"
    );
    let (status, typo) = alice
        .post(
            "/ts/query",
            json!({ "sql": "SELECT spead FROM transit.bus_position" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{typo}");
    assert!(
        typo["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("speed"),
        "names the real columns: {typo}"
    );

    // Malformed requests.
    let (status, _) = stack.rest_without_key().get("/ts/tables").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let raw = reqwest::Client::new()
        .post(format!("{}/api/v1/ts/query", stack.api_url))
        .header("x-api-key", stack.key("carol").await)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("the API answers");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
}

async fn tenants_never_see_each_others_series(backend: Backend) {
    let stack = TestStack::spawn(backend).await;
    let alice = stack.rest(&stack.key("alice").await);
    let bob = stack.rest(&stack.key("bob").await);
    let origin = origin();
    alice
        .post(
            &format!("{BUSES}/records"),
            json!({ "records": bus_records(origin, "B1", "L1") }),
        )
        .await;
    let (_, tables) = bob.get("/ts/tables").await;
    assert_eq!(tables["tables"], json!([]));
    for (path, body) in [
        (format!("{BUSES}/latest"), json!({})),
        (
            format!("{BUSES}/range"),
            json!({"start": "now-1d", "end": "now"}),
        ),
    ] {
        let (status, answer) = bob.post(&path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
    let (status, _) = bob.get(BUSES).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = bob
        .post(
            "/ts/query",
            json!({"sql": "SELECT count(*) FROM transit.bus_position"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, _) = bob.delete(BUSES).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "bob cannot drop alice's table"
    );
    // Bob's own table of the same name is his, with his own schema.
    let (status, outcome) = bob
        .post(
            &format!("{BUSES}/records"),
            json!({"records": [{"time": at(origin, 0), "dimensions": {"bus_id": "X"}, "measures": {"speed": "slow"}}]}),
        )
        .await;
    assert_eq!(
        (status, outcome["records_ingested"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{outcome}"
    );
    let (_, alices) = alice.get(BUSES).await;
    assert_eq!(alices["row_count"], 20);
    assert_eq!(alices["series_count"], 1);
}

async fn mcp_tools_go_through_the_api(backend: Backend) {
    let stack = TestStack::spawn(backend).await;
    let key = stack.key("alice").await;
    let client = stack
        .mcp(&key, ProtocolVersion::V_2025_11_25)
        .await
        .expect("connect");
    let tools = client.list_all_tools().await.expect("tools");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for name in [
        "ts_list_tables",
        "ts_describe_table",
        "ts_write_records",
        "ts_latest",
        "ts_range",
        "ts_query",
        "search_memories",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let write = tools
        .iter()
        .find(|t| t.name == "ts_write_records")
        .expect("write tool");
    assert_eq!(
        write.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(false)
    );
    let query = tools
        .iter()
        .find(|t| t.name == "ts_query")
        .expect("query tool");
    assert_eq!(
        query.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(true)
    );
    assert!(
        query.output_schema.is_some(),
        "data tools carry an outputSchema"
    );
    exercise_ts_tools(&client).await;
}

/// The same calls in either profile: write, list, describe, latest, range, query, and errors.
async fn exercise_ts_tools(client: &McpClient) {
    let origin = origin();
    let written = call_ok(
        client,
        "ts_write_records",
        json!({"database": "transit", "table": "people_count", "records": [
            {"time": at(origin, 0), "dimensions": {"stop_id": "S012"}, "measures": {"count": 4}},
            {"time": at(origin, 60), "dimensions": {"stop_id": "S012"}, "measures": {"count": 9}},
            {"time": at(origin, 60), "dimensions": {"stop_id": "S013"}, "measures": {"count": 2}},
            {"time": at(origin, 120), "dimensions": {"stop_id": "S012"}, "measures": {"count": "many"}},
        ]}),
    )
    .await;
    assert_eq!(written["records_ingested"], 3, "{written}");
    assert_eq!(
        written["rejected_records"][0]["record_index"], 3,
        "{written}"
    );

    let tables = call_ok(client, "ts_list_tables", json!({})).await;
    assert_eq!(tables["tables"][0]["table"], "people_count", "{tables}");
    let described = call_ok(
        client,
        "ts_describe_table",
        json!({"database": "transit", "table": "people_count"}),
    )
    .await;
    assert_eq!(described["row_count"], 3, "{described}");
    assert_eq!(
        described["measures"],
        json!([{"name": "count", "type": "bigint"}])
    );

    let latest = call_ok(
        client,
        "ts_latest",
        json!({"database": "transit", "table": "people_count", "dimensions": {"stop_id": "S012"}}),
    )
    .await;
    assert_eq!(
        latest["series"][0]["points"][0]["measures"]["count"], 9,
        "{latest}"
    );
    let range = call_ok(
        client,
        "ts_range",
        json!({"database": "transit", "table": "people_count", "start": "now-3h", "end": "now", "aggregate": "sum"}),
    )
    .await;
    let sums: Vec<&Value> = range["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| &s["points"][0]["measures"]["count"])
        .collect();
    assert_eq!(sums, [&json!(13), &json!(2)], "{range}");
    let queried = call_ok(
        client,
        "ts_query",
        json!({"sql": "SELECT stop_id, max(count) AS most FROM transit.people_count GROUP BY stop_id ORDER BY most DESC LIMIT 1"}),
    )
    .await;
    assert_eq!(queried["rows"], json!([["S012", 9]]), "{queried}");

    let missing = call_err(
        client,
        "ts_latest",
        json!({"database": "transit", "table": "nothing"}),
    )
    .await;
    assert!(missing.contains("ts_list_tables"), "{missing}");
    let refused = call_err(
        client,
        "ts_query",
        json!({"sql": "DELETE FROM transit.people_count"}),
    )
    .await;
    assert!(!refused.is_empty());
    let no_table = call_err(client, "ts_describe_table", json!({"database": "transit"})).await;
    assert!(no_table.contains("table"), "{no_table}");
    let bad_bin = call_err(
        client,
        "ts_range",
        json!({"database": "transit", "table": "people_count", "start": "now-365d", "end": "now", "bin": "1s"}),
    )
    .await;
    assert!(bad_bin.contains("buckets"), "{bad_bin}");
}

/// The gateway profile: the MCP server answers ts_* from the store itself and checks keys
/// against a key file that is re-read, so a rotated key works and a revoked one stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_profile_serves_time_series_with_its_own_keys() {
    let database = membrain_store::testing::TestDatabase::new(Backend::Sqlite).await;
    let (store, _dir) = time_series_store(&database).await;
    let service = Arc::new(membrain_ts_service::TimeSeriesService::new(
        store,
        Default::default(),
        Default::default(),
    ));
    let keys_dir = tempfile::tempdir().expect("a directory");
    let keys_file = keys_dir.path().join("keys.json");
    let first = "mb_gateway_first_key_0000000000000000";
    let second = "mb_gateway_second_key_000000000000000";
    std::fs::write(&keys_file, json!({ first: "alice" }).to_string()).expect("write keys");
    let refresh = Duration::from_millis(200);
    let keys: Arc<dyn KeyResolver> = Arc::new(
        RefreshingKeys::new(
            Arc::new(FileKeyMap::new(keys_file.clone())),
            RefreshSettings {
                refresh,
                min_reload_gap: refresh,
                ..RefreshSettings::default()
            },
        )
        .await
        .expect("load keys"),
    );
    let server = McpServer::bind_with(
        McpSettings {
            listen: "127.0.0.1:0".parse().expect("address"),
            ..McpSettings::default()
        },
        McpBackend::Direct {
            time_series: service,
            keys,
        },
    )
    .await
    .expect("bind");
    let url = format!("http://{}/mcp", server.local_addr().expect("address"));
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run_until_stopped(shutdown.clone()));
    let endpoint = TestStackUrls {
        mcp_url: url.clone(),
    };

    let client = endpoint.mcp(first).await;
    let tools = client.list_all_tools().await.expect("tools");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(
        names.iter().all(|n| n.starts_with("ts_")),
        "the gateway serves time series only: {names:?}"
    );
    assert_eq!(names.len(), 6, "{names:?}");
    exercise_ts_tools(&client).await;

    // A wrong key is a 401 before any tool runs.
    let http = reqwest::Client::new();
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let answer = http
        .post(&url)
        .header("x-api-key", "mb_not_a_known_key_000000000000000")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&list)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);

    // Rotate: the second key replaces the first in the file.
    std::fs::write(&keys_file, json!({ second: "alice" }).to_string()).expect("rotate keys");
    tokio::time::sleep(refresh * 4).await;
    let rotated = endpoint.mcp(second).await;
    let tables = call_ok(&rotated, "ts_list_tables", json!({})).await;
    assert_eq!(
        tables["tables"][0]["table"], "people_count",
        "same tenant, same data: {tables}"
    );
    let revoked = http
        .post(&url)
        .header("x-api-key", first)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&list)
        .send()
        .await
        .expect("answer");
    assert_eq!(
        revoked.status(),
        StatusCode::UNAUTHORIZED,
        "the revoked key stopped"
    );
    shutdown.cancel();
}

on_both_backends!(
    rest_writes_reads_and_queries,
    rest_bad_input_is_a_clear_error,
    tenants_never_see_each_others_series,
    mcp_tools_go_through_the_api,
);

/// The `membrain ts` commands against a running API: demo data, tables, latest, query, an
/// export read back by an import, and clear failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_commands_fill_read_export_and_import() {
    let stack = TestStack::spawn(Backend::Sqlite).await;
    let key = stack.key("alice").await;
    let env = [
        ("MEMBRAIN_API_KEY", key.as_str()),
        ("API_BASE_URL", stack.api_url.as_str()),
    ];
    let ts = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            membrain_output(&args, &env).await
        }
    };

    let (ok, out, err) = ts(&["ts", "demo", "transit", "--hours", "0.2"]).await;
    assert!(ok, "demo failed: {out}\n{err}");
    assert!(
        out.contains("Wrote") && out.contains("transit.bus_position"),
        "{out}"
    );
    let (ok, out, err) = ts(&["ts", "tables", "--json"]).await;
    assert!(ok, "{err}");
    let tables: Value = serde_json::from_str(&out).expect("JSON");
    let names: Vec<&str> = tables["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|t| t["table"].as_str())
        .collect();
    assert_eq!(names, ["bus_position", "people_count", "sensor_data"]);
    let (ok, out, _) = ts(&["ts", "tables"]).await;
    assert!(
        ok && out.contains("people_count") && out.contains("365d"),
        "a table for people: {out}"
    );

    let (ok, out, err) = ts(&[
        "ts",
        "latest",
        "transit.people_count",
        "-d",
        "stop_id=S012",
        "--json",
    ])
    .await;
    assert!(ok, "{err}");
    let latest: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        latest["series"][0]["dimensions"]["stop_id"], "S012",
        "{latest}"
    );
    assert!(
        latest["series"][0]["points"][0]["measures"]["count"].is_i64(),
        "{latest}"
    );

    let (ok, out, err) = ts(&[
        "ts",
        "query",
        "SELECT line_id, count(*) AS n FROM transit.bus_position GROUP BY line_id ORDER BY line_id",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("line_id") && out.contains("L1") && out.contains("L6"),
        "{out}"
    );

    let dir = tempfile::tempdir().expect("a directory");
    let csv = dir.path().join("counts.csv");
    let csv_arg = csv.to_str().expect("a UTF-8 path");
    let (ok, _, err) = ts(&[
        "ts",
        "export",
        "transit.people_count",
        "--format",
        "csv",
        "-o",
        csv_arg,
    ])
    .await;
    assert!(ok, "export failed: {err}");
    let text = std::fs::read_to_string(&csv).expect("the export");
    assert!(
        text.starts_with("time,"),
        "{}",
        &text[..text.len().min(200)]
    );
    let (ok, out, err) = ts(&["ts", "import", "copy.people_count", csv_arg, "--json"]).await;
    assert!(ok, "import failed: {out}\n{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let alice = stack.rest(&key);
    let (_, original) = alice.get("/ts/tables/transit/people_count").await;
    let (_, copy) = alice.get("/ts/tables/copy/people_count").await;
    assert_eq!(
        report["records_ingested"], original["row_count"],
        "{report}"
    );
    assert_eq!(copy["row_count"], original["row_count"]);
    assert_eq!(copy["measures"], original["measures"]);
    assert_eq!(
        (copy["earliest"].clone(), copy["latest"].clone()),
        (original["earliest"].clone(), original["latest"].clone())
    );

    let (ok, _, err) = ts(&["ts", "describe", "transit.nothing"]).await;
    assert!(!ok && err.contains("does not exist"), "{err}");
    let (ok, _, err) = ts(&["ts", "drop", "copy.people_count"]).await;
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, _, err) = membrain_output(
        &["ts", "tables"],
        &[("API_BASE_URL", stack.api_url.as_str())],
    )
    .await;
    assert!(!ok && err.contains("MEMBRAIN_API_KEY"), "{err}");
    let (ok, _, err) = ts(&["ts", "describe", "bus_position"]).await;
    assert!(!ok && err.contains("DATABASE.TABLE"), "{err}");
}

/// `membrain mcp --profile gateway` as a process on a free port, with `key` mapped to alice in a
/// key file and the data directory in `dir`, plus `extra` arguments: once it listens, the
/// process (stopped on drop) and an MCP client with that key.
async fn gateway_process(
    dir: &std::path::Path,
    key: &str,
    extra: &[&str],
) -> (ServerProcess, McpClient) {
    let keys = dir.join("keys.json");
    std::fs::write(&keys, json!({ key: "alice" }).to_string()).expect("keys");
    // Port 0, the address read from the log: a port picked here and handed over could be
    // taken by another test in between (seen under load).
    let mut command = membrain();
    command
        .args([
            "mcp",
            "--profile",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .args(extra)
        .env("MEMBRAIN_KEYS_FILE", &keys)
        .env("MEMBRAIN_DATA_DIR", dir.join("data"))
        .env("MEMBRAIN_LOG_FORMAT", "json");
    let mut process = ServerProcess::start(command);
    let address = process.wait_for_address("gateway profile").await;
    let client = TestStackUrls {
        mcp_url: format!("http://{address}/mcp"),
    }
    .mcp(key)
    .await;
    (process, client)
}

/// `membrain mcp --profile gateway` as a process: port from the flag, keys from a file, the
/// embedded store in the data directory; it refuses to start without any key source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_process_serves_time_series() {
    let dir = tempfile::tempdir().expect("a directory");
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().expect("path");

    let (ok, _, err) = membrain_output(
        &["mcp", "--profile", "gateway"],
        &[("MEMBRAIN_DATA_DIR", data)],
    )
    .await;
    assert!(
        !ok && err.contains("MEMBRAIN_KEYS_SECRET"),
        "names the key sources: {err}"
    );

    let (_process, client) =
        gateway_process(dir.path(), "mb_gateway_process_key_00000000000000", &[]).await;
    let written = call_ok(
        &client,
        "ts_write_records",
        json!({"database": "plant", "table": "readings", "records": [
            {"time": Timestamp::now().to_rfc3339(), "dimensions": {"sensor": "t1"}, "measures": {"celsius": 21.5}},
        ]}),
    )
    .await;
    assert_eq!(written["records_ingested"], 1, "{written}");
    let latest = call_ok(
        &client,
        "ts_latest",
        json!({"database": "plant", "table": "readings"}),
    )
    .await;
    assert_eq!(
        latest["series"][0]["points"][0]["measures"]["celsius"], 21.5,
        "{latest}"
    );
    assert!(
        data_dir.join("timeseries").exists(),
        "the embedded store lives in the data directory"
    );
}

/// A gateway whose PostgreSQL is not there yet (here: its database not created) serves anyway:
/// time-series calls say the store is not reachable yet, and work once it is, without a restart
/// (on ECS, a task that exited instead would be restarted over and over during an outage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_before_its_database_is_there_and_uses_it_once_it_is() {
    let dir = tempfile::tempdir().expect("a directory");
    let database = membrain_store::testing::TestDatabase::postgres_not_created();
    let (_process, client) = gateway_process(
        dir.path(),
        "mb_gateway_late_database_key_0000000000",
        &["--ts-store", &database.url],
    )
    .await;
    let error = call_err(&client, "ts_list_tables", json!({})).await;
    assert!(error.contains("unavailable"), "{error}");

    database.create().await;
    let mut listed = None;
    for _ in 0..60 {
        let result = call_tool(&client, "ts_list_tables", json!({})).await;
        if result.is_error != Some(true) {
            listed = result.structured_content;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let listed = listed.expect("the store is used once its database exists");
    assert_eq!(listed["tables"], json!([]), "{listed}");
    let written = call_ok(
        &client,
        "ts_write_records",
        json!({"database": "plant", "table": "readings", "records": [
            {"time": Timestamp::now().to_rfc3339(), "dimensions": {"sensor": "t1"}, "measures": {"celsius": 20.0}},
        ]}),
    )
    .await;
    assert_eq!(written["records_ingested"], 1, "{written}");
}

/// Outside Lambda, `membrain authorizer` says what it is for instead of hanging or panicking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_outside_lambda_says_so() {
    let (ok, _, err) = membrain_output(&["authorizer"], &[]).await;
    assert!(!ok, "{err}");
    assert!(
        err.contains("MEMBRAIN_KEYS_SECRET"),
        "names what is missing: {err}"
    );
    let (ok, _, err) = membrain_output(
        &["authorizer"],
        &[("MEMBRAIN_KEYS_SECRET", "membrain/api-keys")],
    )
    .await;
    assert!(!ok && err.contains("Lambda"), "{err}");
}

/// `membrain ts demo transit --live` keeps writing new records until stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_demo_keeps_writing() {
    let stack = TestStack::spawn(Backend::Sqlite).await;
    let key = stack.key("alice").await;
    let mut command = membrain();
    command
        .args([
            "ts",
            "demo",
            "transit",
            "--hours",
            "0",
            "--live",
            "--interval",
            "1s",
        ])
        .env("MEMBRAIN_API_KEY", &key)
        .env("API_BASE_URL", &stack.api_url);
    let mut process = ServerProcess::start(command);
    process.wait_for("Live:").await;
    // Buses report every 10 s: within 12 one-second ticks some tick writes records.
    let mut written = 0;
    for _ in 0..12 {
        let line = process.wait_for(" records").await;
        let count = line
            .split('+')
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("a tick line names its count: {line}"));
        written += count;
        if written > 0 {
            break;
        }
    }
    assert!(written > 0, "the live feed wrote nothing in 12 s");
    let alice = stack.rest(&key);
    let (status, positions) = alice.get("/ts/tables/transit/bus_position").await;
    assert_eq!(status, StatusCode::OK, "{positions}");
    assert!(
        positions["row_count"].as_u64().unwrap_or(0) > 0,
        "live records arrived: {positions}"
    );
}
