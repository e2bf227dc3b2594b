use serde_json::{Value as Json, json};

use super::*;
use crate::{
    AttributeName, DatabaseName, DimensionFilter, Dimensions, MeasureType, MeasureValue, Point,
    TableDescription, TableMeta,
};

const ORIGIN: &str = "2026-11-26T14:00:00Z";

fn origin() -> Timestamp {
    Timestamp::parse(ORIGIN).unwrap()
}

fn at(seconds: i64) -> Timestamp {
    origin().plus_micros(seconds * 1_000_000)
}

fn name(raw: &str) -> AttributeName {
    AttributeName::parse(raw).unwrap()
}

fn meta() -> TableMeta {
    let mut meta = TableMeta::new(
        TableRef::parse("transit", "bus_position").unwrap(),
        crate::Span::parse("365d").unwrap(),
        origin(),
    );
    meta.schema.dimensions = [name("bus_id"), name("line_id")].into();
    meta.schema.measures = [
        (name("passengers"), MeasureType::Bigint),
        (name("speed"), MeasureType::Double),
        (name("status"), MeasureType::Varchar),
    ]
    .into();
    meta
}

fn schema() -> TableSchema {
    meta().schema
}

fn record(seconds: i64, measures: &[(&str, MeasureValue)]) -> Point {
    let mut measures: Vec<(AttributeName, MeasureValue)> = measures
        .iter()
        .map(|(key, value)| (name(key), value.clone()))
        .collect();
    measures.sort_by(|a, b| a.0.cmp(&b.0));
    Point {
        time: at(seconds),
        measures,
    }
}

fn series(bus: &str, line: &str, points: Vec<Point>) -> SeriesPoints {
    SeriesPoints {
        dimensions: Dimensions::new([
            (name("bus_id"), bus.to_owned()),
            (name("line_id"), line.to_owned()),
        ]),
        points,
    }
}

/// Three buses: B1 and B2 on line L3, B3 on L4. B1's last record has no speed.
fn data() -> Vec<SeriesPoints> {
    use MeasureValue::{Bigint, Double, Varchar};
    vec![
        series(
            "B1",
            "L3",
            vec![
                record(0, &[("speed", Double(10.0))]),
                record(30, &[("speed", Double(20.0))]),
                record(
                    60,
                    &[("speed", Double(30.0)), ("status", Varchar("ok".into()))],
                ),
                record(90, &[("passengers", Bigint(5))]),
            ],
        ),
        series(
            "B2",
            "L3",
            vec![
                record(0, &[("speed", Double(40.0)), ("passengers", Bigint(2))]),
                record(70, &[("speed", Double(50.0))]),
            ],
        ),
        series(
            "B3",
            "L4",
            vec![record(
                10,
                &[
                    ("speed", Double(100.0)),
                    ("status", Varchar("1m late".into())),
                ],
            )],
        ),
    ]
}

fn now() -> Timestamp {
    at(120)
}

fn run_sql(sql: &str, limits: &ReadLimits) -> Result<QueryResult, TsError> {
    parse(sql)?.execute(&schema(), data(), now(), limits)
}

/// Runs `sql` over [`data`] and compares the column names and rows.
fn check(sql: &str, columns: &[&str], rows: Json) {
    let result =
        run_sql(sql, &ReadLimits::default()).unwrap_or_else(|error| panic!("{sql}: {error}"));
    let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, columns, "{sql}");
    assert_eq!(Json::from(result.rows), rows, "{sql}");
    assert!(!result.truncated, "{sql}");
}

/// Expects `sql` to fail with the error kind `code` and a message containing `needle`.
fn check_error(sql: &str, code: &str, needle: &str) {
    let error = match parse(sql) {
        Err(error) => error,
        Ok(query) => query
            .execute(&schema(), data(), now(), &ReadLimits::default())
            .expect_err(sql),
    };
    assert_eq!(error.code(), code, "{sql}: {error}");
    assert!(error.to_string().contains(needle), "{sql}: {error}");
}

#[test]
fn writes_several_statements_and_outside_reads_are_refused() {
    let refused = [
        ("DROP TABLE transit.bus_position", "DROP"),
        ("DELETE FROM transit.bus_position", "DELETE"),
        ("INSERT INTO transit.bus_position VALUES (1)", "INSERT"),
        ("UPDATE transit.bus_position SET speed = 1", "UPDATE"),
        ("CREATE TABLE transit.x (a int)", "CREATE"),
        (
            "SELECT * FROM transit.bus_position; DELETE FROM transit.bus_position",
            "2 statements",
        ),
        (
            "SELECT pg_sleep(10) FROM transit.bus_position",
            "unknown function pg_sleep",
        ),
        ("SELECT * FROM other_tenant.transit.bus_position", "3 parts"),
        (
            "SELECT * FROM information_schema.tables",
            "system catalogue",
        ),
        ("SELECT * FROM pg_catalog.pg_tables", "system catalogue"),
        ("SELECT * FROM sqlite_master", "system catalogue"),
        (
            "SELECT * FROM transit.aaa JOIN transit.bbb ON aaa.x = bbb.x",
            "JOIN",
        ),
        (
            "SELECT speed FROM transit.aaa UNION SELECT speed FROM transit.bbb",
            "UNION",
        ),
        (
            "SELECT * FROM transit.aaa WHERE speed IN (SELECT speed FROM transit.bbb)",
            "subquery",
        ),
        (
            "SELECT * FROM (SELECT * FROM transit.aaa)",
            "only a table name",
        ),
        ("WITH x AS (SELECT 1) SELECT * FROM transit.aaa", "WITH"),
        ("SELECT * FROM transit.aaa FOR UPDATE", "FOR UPDATE"),
    ];
    for (sql, needle) in refused {
        let error = parse(sql).expect_err(sql);
        assert!(matches!(error, TsError::Refused(_)), "{sql}: {error:?}");
        let message = error.to_string();
        assert!(message.contains(needle), "{sql}: {message}");
        assert!(
            message.contains("SELECT"),
            "says what is allowed: {message}"
        );
    }
}

#[test]
fn unsupported_or_malformed_sql_is_invalid_with_a_fix() {
    for (sql, needle) in [
        ("", "empty"),
        ("SELEC speed FROM transit.aaa", "cannot parse"),
        (
            "SELECT speed FROM bus_position",
            "FROM transit.bus_position",
        ),
        ("SELECT DISTINCT bus_id FROM transit.aaa", "GROUP BY"),
        ("SELECT speed FROM transit.aaa LIMIT 5 OFFSET 2", "OFFSET"),
        ("SELECT b.speed FROM transit.aaa", "without a qualifier"),
        ("SELECT bin(time) FROM transit.aaa", "bin(time, 5m)"),
        (
            "SELECT speed FROM transit.aaa WHERE speed = ?",
            "placeholder",
        ),
    ] {
        let error = parse(sql).expect_err(sql);
        assert_eq!(error.code(), "invalid_argument", "{sql}: {error}");
        assert!(error.to_string().contains(needle), "{sql}: {error}");
    }
    let long = format!(
        "SELECT * FROM transit.aaa WHERE bus_id = '{}'",
        "x".repeat(MAX_SQL_BYTES)
    );
    assert_eq!(parse(&long).unwrap_err().code(), "limit_exceeded");
}

#[test]
fn binding_errors_name_the_column_and_the_fix() {
    check_error(
        "SELECT spead FROM transit.bus_position",
        "invalid_argument",
        "unknown column spead in transit.bus_position: its columns are time, bus_id, line_id, \
         passengers, speed, status",
    );
    check_error(
        "SELECT bus_id, avg(speed) FROM transit.bus_position",
        "invalid_argument",
        "bus_id must be in GROUP BY",
    );
    check_error(
        "SELECT avg(status) FROM transit.bus_position",
        "invalid_argument",
        "numeric",
    );
    check_error(
        "SELECT * FROM transit.bus_position WHERE bus_id = 5",
        "invalid_argument",
        "quote text values",
    );
    check_error(
        "SELECT * FROM transit.bus_position WHERE time > 'yesterday'",
        "invalid_argument",
        "'yesterday' is not a time",
    );
    check_error(
        "SELECT * FROM transit.bus_position WHERE avg(speed) > 1",
        "invalid_argument",
        "not allowed in WHERE",
    );
    check_error(
        "SELECT bin(time, 500ms) FROM transit.bus_position",
        "invalid_argument",
        "one second",
    );
    check_error(
        "SELECT speed FROM transit.bus_position ORDER BY 3",
        "invalid_argument",
        "there are 1 result columns",
    );
    check_error(
        "SELECT 1h FROM transit.bus_position",
        "invalid_argument",
        "duration",
    );
}

#[test]
fn durations_are_read_from_tokens_so_strings_and_comments_are_untouched() {
    check(
        "SELECT bus_id, status FROM transit.bus_position -- 1m in a comment\n\
         WHERE status = '1m late' /* 5m */ AND time > now() - 1h",
        &["bus_id", "status"],
        json!([["B3", "1m late"]]),
    );
    let query = parse("SELECT bin(time, 1m), 'bin(time, 1m)' FROM transit.bus_position").unwrap();
    let result = query
        .execute(&schema(), data(), now(), &ReadLimits::default())
        .unwrap();
    assert_eq!(result.columns[0].name, "bin(time, 1m)");
    assert_eq!(result.rows[0][1], json!("bin(time, 1m)"));
}

#[test]
fn filters_and_projections() {
    check(
        "SELECT time, bus_id, speed FROM transit.bus_position WHERE speed >= 30 AND NOT bus_id = 'B3'",
        &["time", "bus_id", "speed"],
        json!([
            ["2026-11-26T14:01:00Z", "B1", 30.0],
            ["2026-11-26T14:00:00Z", "B2", 40.0],
            ["2026-11-26T14:01:10Z", "B2", 50.0],
        ]),
    );
    check(
        "SELECT bus_id, speed * 2 AS double_speed FROM transit.bus_position \
         WHERE speed BETWEEN 15 AND 45 OR bus_id IN ('B3') ORDER BY speed DESC",
        &["bus_id", "double_speed"],
        json!([["B3", 200.0], ["B2", 80.0], ["B1", 60.0], ["B1", 40.0]]),
    );
    check(
        "SELECT time, passengers FROM transit.bus_position WHERE speed IS NULL",
        &["time", "passengers"],
        json!([["2026-11-26T14:01:30Z", 5]]),
    );
    check(
        "SELECT bus_id, status FROM transit.bus_position WHERE status LIKE '%late' OR status <> 'ok'",
        &["bus_id", "status"],
        json!([["B3", "1m late"]]),
    );
    // A time written as a string compares as a time; a missing measure is NULL.
    check(
        "SELECT time, speed, status FROM transit.bus_position \
         WHERE bus_id = 'B1' AND time >= '2026-11-26T14:01:00Z'",
        &["time", "speed", "status"],
        json!([
            ["2026-11-26T14:01:00Z", 30.0, "ok"],
            ["2026-11-26T14:01:30Z", null, null],
        ]),
    );
    check(
        "SELECT * FROM transit.bus_position WHERE bus_id = 'B2' AND time = from_iso8601_timestamp('2026-11-26T14:00:00Z')",
        &["time", "bus_id", "line_id", "passengers", "speed", "status"],
        json!([["2026-11-26T14:00:00Z", "B2", "L3", 2, 40.0, null]]),
    );
}

#[test]
fn group_by_bin_and_dimension_with_aggregates() {
    check(
        "SELECT bin(time, 1m) AS minute, line_id, avg(speed), count(*) AS records, \
         count(speed), min(speed), max(speed), sum(passengers), first(speed), last(speed) \
         FROM transit.bus_position GROUP BY minute, line_id ORDER BY minute, line_id",
        &[
            "minute",
            "line_id",
            "avg(speed)",
            "records",
            "count(speed)",
            "min(speed)",
            "max(speed)",
            "sum(passengers)",
            "first(speed)",
            "last(speed)",
        ],
        json!([
            [
                "2026-11-26T14:00:00Z",
                "L3",
                23.333333333333332,
                3,
                3,
                10.0,
                40.0,
                2,
                10.0,
                20.0
            ],
            [
                "2026-11-26T14:00:00Z",
                "L4",
                100.0,
                1,
                1,
                100.0,
                100.0,
                null,
                100.0,
                100.0
            ],
            [
                "2026-11-26T14:01:00Z",
                "L3",
                40.0,
                3,
                2,
                30.0,
                50.0,
                5,
                30.0,
                50.0
            ],
        ]),
    );
    // max_by answers the value at the greatest rank, even when that value is NULL (B1's last
    // record has no speed), as Timestream does.
    check(
        "SELECT bus_id, max_by(speed, time) AS latest, min_by(speed, speed) AS slowest \
         FROM transit.bus_position GROUP BY 1 ORDER BY 1 DESC",
        &["bus_id", "latest", "slowest"],
        json!([["B3", 100.0, 100.0], ["B2", 50.0, 40.0], ["B1", null, 10.0]]),
    );
    // Without GROUP BY an aggregate answers one row, even over nothing.
    check(
        "SELECT count(*), avg(speed) FROM transit.bus_position WHERE bus_id = 'nobody'",
        &["count(*)", "avg(speed)"],
        json!([[0, null]]),
    );
    check(
        "SELECT line_id, count(*) AS n FROM transit.bus_position GROUP BY line_id ORDER BY n DESC",
        &["line_id", "n"],
        json!([["L3", 6], ["L4", 1]]),
    );
}

#[test]
fn order_limit_and_the_row_cap() {
    check(
        "SELECT bus_id, speed FROM transit.bus_position ORDER BY speed DESC NULLS FIRST, bus_id LIMIT 3",
        &["bus_id", "speed"],
        json!([["B1", null], ["B3", 100.0], ["B2", 50.0]]),
    );
    // Ordering by a column that is not shown.
    check(
        "SELECT speed FROM transit.bus_position WHERE bus_id = 'B2' ORDER BY time DESC",
        &["speed"],
        json!([[50.0], [40.0]]),
    );
    let capped = ReadLimits {
        max_query_rows: 2,
        ..ReadLimits::default()
    };
    let result = run_sql("SELECT time FROM transit.bus_position", &capped).unwrap();
    assert_eq!(
        (result.rows.len(), result.truncated, result.rows_scanned),
        (2, true, 7)
    );
    let result = run_sql("SELECT time FROM transit.bus_position LIMIT 2", &capped).unwrap();
    assert_eq!((result.rows.len(), result.truncated), (2, false));
    let result = run_sql(
        "SELECT speed FROM transit.bus_position ORDER BY speed",
        &capped,
    )
    .unwrap();
    assert_eq!(result.rows, vec![vec![json!(10.0)], vec![json!(20.0)]]);
    assert!(result.truncated);
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(
        json["columns"],
        json!([{"name": "speed", "type": "double"}])
    );
}

fn scan_of(sql: &str) -> Scan {
    parse(sql)
        .unwrap()
        .scan(&schema(), now())
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

#[test]
fn top_level_time_and_dimension_conditions_are_pushed_into_the_scan() {
    let hour = 3_600_000_000;
    let scan = scan_of(
        "SELECT avg(speed) FROM transit.bus_position WHERE time > ago(1h) AND bus_id = 'B1'",
    );
    assert_eq!(scan.table.to_string(), "transit.bus_position");
    assert_eq!(scan.start, Some(now().plus_micros(-hour + 1)));
    assert_eq!(scan.end, None);
    assert_eq!(
        scan.dimensions,
        DimensionFilter::new([(name("bus_id"), "B1".to_owned())])
    );
    assert_eq!(scan.measures, Some(vec![name("speed")]));

    let scan = scan_of(
        "SELECT speed FROM transit.bus_position WHERE '2026-11-26T14:00:00Z' <= time \
         AND time <= now() - 1m AND line_id IN ('L3') AND time < '2026-11-26T15:00:00Z'",
    );
    assert_eq!(scan.start, Some(origin()));
    assert_eq!(scan.end, Some(at(60).plus_micros(1)));
    assert_eq!(
        scan.dimensions,
        DimensionFilter::new([(name("line_id"), "L3".to_owned())])
    );

    let scan = scan_of(
        "SELECT speed FROM transit.bus_position WHERE time BETWEEN '2026-11-26T14:00:00Z' \
         AND '2026-11-26T14:01:00Z'",
    );
    assert_eq!(
        (scan.start, scan.end),
        (Some(origin()), Some(at(60).plus_micros(1)))
    );

    // Conditions under OR or NOT, and IN with several values, are only applied in memory.
    let scan = scan_of(
        "SELECT * FROM transit.bus_position WHERE (time > ago(1h) OR bus_id = 'B1') \
         AND NOT line_id = 'L3' AND bus_id IN ('B1', 'B2')",
    );
    assert_eq!((scan.start, scan.end), (None, None));
    assert!(scan.dimensions.is_empty());
    assert_eq!(scan.measures, None, "SELECT * reads every measure");
    assert_eq!(
        scan_of("SELECT count(*) FROM transit.bus_position WHERE speed > 1").measures,
        None,
        "count(*) counts records whatever their measures"
    );
}

#[test]
fn pushdown_gives_the_same_answer_as_filtering_everything() {
    let sql = "SELECT bus_id, count(*) FROM transit.bus_position \
               WHERE time >= '2026-11-26T14:00:30Z' AND line_id = 'L3' GROUP BY bus_id ORDER BY 1";
    let query = parse(sql).unwrap();
    let scan = query.scan(&schema(), now()).unwrap();
    let scanned: Vec<SeriesPoints> = data()
        .into_iter()
        .filter(|entry| entry.dimensions.matches(&scan.dimensions))
        .map(|mut entry| {
            entry.points.retain(|point| scan.contains(point.time));
            entry
        })
        .collect();
    let limits = ReadLimits::default();
    let pushed = query.execute(&schema(), scanned, now(), &limits).unwrap();
    let everything = query.execute(&schema(), data(), now(), &limits).unwrap();
    assert_eq!(pushed.rows, everything.rows);
    assert_eq!(
        pushed.rows,
        vec![vec![json!("B1"), json!(3)], vec![json!("B2"), json!(1)]]
    );
    assert_eq!((pushed.rows_scanned, everything.rows_scanned), (4, 7));
}

/// A store holding [`data`] for one tenant, for [`run`].
struct FixedStore;

#[async_trait::async_trait]
impl TimeSeriesStore for FixedStore {
    fn describe(&self) -> String {
        "fixed test store".into()
    }

    async fn list_tables(
        &self,
        _: &TenantId,
        _: Option<&DatabaseName>,
    ) -> Result<Vec<crate::TableSummary>, TsError> {
        Ok(Vec::new())
    }

    async fn describe_table(
        &self,
        _: &TenantId,
        _: &TableRef,
    ) -> Result<TableDescription, TsError> {
        // Counting may read a whole table: ts_query must not ask for it.
        Err(TsError::Internal(
            "ts_query plans with table_meta, which counts nothing".into(),
        ))
    }

    async fn table_meta(&self, tenant: &TenantId, table: &TableRef) -> Result<TableMeta, TsError> {
        if tenant.as_str() == "alice" && table.to_string() == "transit.bus_position" {
            Ok(meta())
        } else {
            Err(TsError::table_not_found(table))
        }
    }

    async fn write(
        &self,
        _: &TenantId,
        _: &TableRef,
        _: Vec<crate::BatchItem>,
        _: &crate::WriteLimits,
    ) -> Result<crate::WriteOutcome, TsError> {
        Err(TsError::Internal("read-only test store".into()))
    }

    async fn latest(
        &self,
        _: &TenantId,
        _: &crate::LatestQuery,
        _: &ReadLimits,
    ) -> Result<crate::LatestResult, TsError> {
        Err(TsError::Internal("not used".into()))
    }

    async fn range(
        &self,
        _: &TenantId,
        _: &crate::RangeQuery,
        _: &ReadLimits,
    ) -> Result<crate::RangeResult, TsError> {
        Err(TsError::Internal("not used".into()))
    }

    async fn scan(
        &self,
        _: &TenantId,
        scan: &Scan,
        limits: &ReadLimits,
    ) -> Result<Vec<SeriesPoints>, TsError> {
        let total: usize = data().iter().map(|entry| entry.points.len()).sum();
        if total > limits.max_scan_rows {
            return Err(crate::scan_limit_error(limits.max_scan_rows));
        }
        Ok(data()
            .into_iter()
            .filter(|entry| entry.dimensions.matches(&scan.dimensions))
            .collect())
    }

    async fn set_retention(
        &self,
        _: &TenantId,
        _: &TableRef,
        _: crate::Span,
    ) -> Result<TableDescription, TsError> {
        Err(TsError::Internal("not used".into()))
    }

    async fn drop_table(&self, _: &TenantId, _: &TableRef) -> Result<(), TsError> {
        Err(TsError::Internal("not used".into()))
    }
}

/// Polls a future that never waits (the fixed store answers at once) to completion.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

#[test]
fn run_reads_describes_scans_and_answers() {
    let alice = TenantId::parse("alice").unwrap();
    let limits = ReadLimits::default();
    let result = block_on(run(
        &FixedStore,
        &alice,
        "SELECT bus_id, max(speed) FROM transit.bus_position WHERE line_id = 'L3' GROUP BY bus_id ORDER BY 1",
        &limits,
    ))
    .unwrap();
    assert_eq!(
        result.rows,
        vec![
            vec![json!("B1"), json!(30.0)],
            vec![json!("B2"), json!(50.0)]
        ]
    );
    assert_eq!(result.rows_scanned, 6);

    let other = TenantId::parse("mallory").unwrap();
    let error = block_on(run(
        &FixedStore,
        &other,
        "SELECT * FROM transit.bus_position",
        &limits,
    ))
    .unwrap_err();
    assert_eq!(error.code(), "not_found");

    let tight = ReadLimits {
        max_scan_rows: 3,
        ..ReadLimits::default()
    };
    let error = block_on(run(
        &FixedStore,
        &alice,
        "SELECT * FROM transit.bus_position",
        &tight,
    ))
    .unwrap_err();
    assert!(matches!(error, TsError::Limit(_)), "{error:?}");
}

#[test]
fn like_matches_sql_wildcards() {
    for (text, pattern, expected) in [
        ("1m late", "%late", true),
        ("1m late", "1_ l%", true),
        ("late", "%late%", true),
        ("abc", "a%c%", true),
        ("abc", "a_", false),
        ("", "%", true),
        ("ab", "%b%b", false),
    ] {
        assert_eq!(
            value::like(text, pattern),
            expected,
            "{text} LIKE {pattern}"
        );
    }
}

#[test]
fn like_patterns_are_literal_apart_from_their_wildcards() {
    for (text, pattern, expected) in [
        ("a.c", "a.c", true),
        ("abc", "a.c", false),
        ("a+b(c)", "a+b(c)", true),
        ("[x]", "[_]", true),
        ("line\nbreak", "line%break", true),
        ("ünï", "_n_", true),
        ("ünï", "__", false),
        ("B12", "B1%%%", true),
        ("50%", "50%", true),
        ("$^\\", "$^\\", true),
    ] {
        assert_eq!(
            value::like(text, pattern),
            expected,
            "{text:?} LIKE {pattern:?}"
        );
    }
}

#[test]
fn a_pathological_like_pattern_is_answered_quickly_and_correctly() {
    // Backtracking matchers take O(text × pattern) here; the compiled pattern does not.
    let text = "a".repeat(20_000);
    let pattern = format!("{}b", "%a".repeat(100));
    assert!(!value::like(&text, &pattern));
    assert!(value::like(&format!("{text}b"), &pattern));
}

#[test]
fn like_patterns_are_constant_and_bounded() {
    check(
        "SELECT bus_id FROM transit.bus_position WHERE status LIKE '1m%' OR status LIKE NULL",
        &["bus_id"],
        json!([["B3"]]),
    );
    check(
        "SELECT count(*) AS n FROM transit.bus_position WHERE status NOT LIKE 'o_'",
        &["n"],
        json!([[1]]),
    );
    check_error(
        "SELECT * FROM transit.bus_position WHERE status LIKE bus_id",
        "invalid_argument",
        "must be a constant text",
    );
    let long = format!(
        "SELECT * FROM transit.bus_position WHERE status LIKE '{}'",
        "x".repeat(MAX_LIKE_PATTERN_CHARS + 1)
    );
    check_error(&long, "limit_exceeded", "at most 256 characters");
    let wildcards = format!(
        "SELECT * FROM transit.bus_position WHERE status LIKE '{}'",
        "_".repeat(MAX_LIKE_PATTERN_CHARS)
    );
    // Within the cap, even the largest pattern compiles (or is refused as too complex, not a
    // failure).
    match parse(&wildcards)
        .unwrap()
        .execute(&schema(), data(), now(), &ReadLimits::default())
    {
        Ok(result) => assert!(result.rows.is_empty()),
        Err(error) => assert_eq!(error.code(), "limit_exceeded", "{error}"),
    }
}

#[test]
fn evaluation_stops_at_the_deadline() {
    let expired = ReadLimits {
        deadline: crate::Deadline::after(std::time::Duration::ZERO),
        ..ReadLimits::default()
    };
    for sql in [
        "SELECT * FROM transit.bus_position",
        "SELECT bus_id, avg(speed) FROM transit.bus_position GROUP BY bus_id",
    ] {
        let error = run_sql(sql, &expired).expect_err(sql);
        assert!(matches!(error, TsError::Limit(_)), "{sql}: {error:?}");
        assert!(error.to_string().contains("deadline"), "{error}");
    }
}
