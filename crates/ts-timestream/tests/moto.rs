//! The Timestream store against moto on 127.0.0.1: tables, writes and retention for real (moto
//! models the write API), reads through canned Query answers (moto runs no SQL): a test registers
//! the answer for the exact SQL the store must send, so these tests check both the SQL and the
//! parsing of ColumnInfo / Rows / NextToken pages.
#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

use membrain_aws::Credentials;
use membrain_aws::testing::MotoServer;
use membrain_timeseries::testing::{table, tenant, test_origin, write_json};
use membrain_timeseries::{
    Aggregate, AttributeName, Bin, DimensionFilter, LatestQuery, MeasureValue, RangeQuery,
    ReadLimits, Scan, Span, TimeSeriesStore, Timestamp, TsError,
};
use membrain_ts_timestream::{TimestreamOptions, TimestreamStore, TimestreamUrl};
use serde_json::{Value as Json, json};

async fn store(moto: &MotoServer) -> TimestreamStore {
    let url = TimestreamUrl::parse(&format!(
        "timestream://membrain?region={}&endpoint={}",
        MotoServer::REGION,
        moto.endpoint
    ))
    .expect("a valid url");
    let credentials = Credentials::new("testing", "testing", None, None, "tests");
    TimestreamStore::connect(&url, Some(credentials), TimestreamOptions::default())
        .await
        .expect("connect")
}

/// Registers `pages` as moto's answers to `sql`, one page per call.
async fn answer(moto: &MotoServer, sql: &str, pages: Vec<Json>) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/moto-api/static/timestream/query-results",
            moto.endpoint
        ))
        .json(&json!({"region": MotoServer::REGION, "results": {sql: pages}}))
        .send()
        .await
        .expect("moto answers");
    assert!(response.status().is_success(), "{response:?}");
}

fn page(columns: &[(&str, &str)], rows: &[&[Option<&str>]], next_token: Option<&str>) -> Json {
    let column_info: Vec<Json> = columns
        .iter()
        .map(|(name, kind)| json!({"Name": name, "Type": {"ScalarType": kind}}))
        .collect();
    let rows: Vec<Json> = rows
        .iter()
        .map(|row| {
            let data: Vec<Json> = row
                .iter()
                .map(|cell| match cell {
                    Some(text) => json!({"ScalarValue": text}),
                    None => json!({"NullValue": true}),
                })
                .collect();
            json!({"Data": data})
        })
        .collect();
    let mut page = json!({"QueryId": "canned", "ColumnInfo": column_info, "Rows": rows});
    if let Some(token) = next_token {
        page["NextToken"] = json!(token);
    }
    page
}

/// DESCRIBE's answer for a table with dimensions `stop_id`, `line_id` and measures `count`
/// (bigint), `door` (varchar).
fn describe_answer() -> Json {
    let row = |column, kind, role| [Some(column), Some(kind), Some(role)];
    page(
        &[
            ("Column", "VARCHAR"),
            ("Type", "VARCHAR"),
            ("Timestream attribute type", "VARCHAR"),
        ],
        &[
            &row("line_id", "varchar", "DIMENSION"),
            &row("stop_id", "varchar", "DIMENSION"),
            &row("measure_name", "varchar", "MEASURE_NAME"),
            &row("time", "timestamp", "TIMESTAMP"),
            &row("count", "bigint", "MULTI"),
            &row("door", "varchar", "MULTI"),
        ],
        None,
    )
}

const FROM: &str = "\"membrain\".\"carol.transit.people_count\"";

fn nanos(time: Timestamp) -> i64 {
    time.as_micros() * 1_000
}

/// A series as the tests compare it: a dimension, the point's time and its measures.
type SeriesView<'a> = (Option<&'a str>, String, Vec<(String, MeasureValue)>);

fn name(raw: &str) -> AttributeName {
    AttributeName::parse(raw).unwrap()
}

#[tokio::test]
async fn tables_are_created_on_first_write_listed_retained_and_dropped() {
    let moto = MotoServer::start();
    let store = store(&moto).await;
    let alice = tenant("alice");
    let buses = table("transit", "bus_position");
    let origin = test_origin();
    // 250 records: three WriteRecords calls of at most 100.
    let records: Vec<Json> = (0..250)
        .map(|i| {
            json!({"time": origin.plus_micros(i * 1_000_000).to_rfc3339(),
                        "dimensions": {"bus_id": format!("B{}", i % 3)},
                        "measures": {"speed": 1.5, "passengers": i}})
        })
        .collect();
    let outcome = write_json(&store, &alice, &buses, &records)
        .await
        .expect("write");
    assert_eq!(outcome.records_ingested, 250, "{outcome:?}");
    assert!(outcome.rejected_records.is_empty(), "{outcome:?}");
    assert!(
        outcome.table_created,
        "the first write creates the table (and the database)"
    );

    let again = write_json(
        &store,
        &alice,
        &buses,
        &[
            json!({"time": origin.to_rfc3339(), "dimensions": {"bus_id": "B9"}, "measures": {"speed": "fast"}}),
            json!({"time": origin.to_rfc3339(), "dimensions": {"bus_id": "B9"}, "measures": {"speed": 2.0}}),
        ],
    )
    .await
    .expect("a second write");
    assert!(!again.table_created);
    assert_eq!(again.records_ingested, 1);
    assert_eq!(
        again.rejected_records.len(),
        1,
        "the admission rules run before Timestream: {again:?}"
    );
    assert_eq!(again.rejected_records[0].record_index, 0);

    let other = table("plant", "readings");
    write_json(
        &store,
        &alice,
        &other,
        &[json!({"time": origin.to_rfc3339(), "measures": {"v": 1}})],
    )
    .await
    .expect("another table");
    write_json(
        &store,
        &tenant("bob"),
        &buses,
        &[json!({"time": origin.to_rfc3339(), "measures": {"v": 1}})],
    )
    .await
    .expect("bob's table of the same name");

    let listed: Vec<(String, String, String)> = store
        .list_tables(&alice, None)
        .await
        .expect("list")
        .into_iter()
        .map(|t| (t.database.to_string(), t.table, t.retention))
        .collect();
    assert_eq!(
        listed,
        [
            ("plant".into(), "readings".into(), "365d".into()),
            ("transit".into(), "bus_position".into(), "365d".into()),
        ]
    );
    let transit = membrain_timeseries::DatabaseName::parse("transit").unwrap();
    assert_eq!(
        store
            .list_tables(&alice, Some(&transit))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list_tables(&tenant("mallory"), None)
            .await
            .unwrap()
            .is_empty()
    );

    // 36 hours: 2 days in all, no more memory-store hours than the retention.
    let described = store
        .set_retention(&alice, &buses, Span::parse("36h").unwrap())
        .await
        .expect("retention");
    assert_eq!(described.retention, "2d");
    let listed = store.list_tables(&alice, Some(&transit)).await.unwrap();
    assert_eq!(listed[0].retention, "2d");

    store.drop_table(&alice, &buses).await.expect("drop");
    assert_eq!(store.list_tables(&alice, None).await.unwrap().len(), 1);
    let gone = store
        .drop_table(&alice, &buses)
        .await
        .expect_err("dropped twice");
    assert!(matches!(gone, TsError::NotFound(_)), "{gone:?}");
    let missing = store
        .describe_table(&alice, &buses)
        .await
        .expect_err("dropped");
    assert!(matches!(missing, TsError::NotFound(_)), "{missing:?}");
    let error = store
        .set_retention(&tenant("mallory"), &other, Span::parse("1d").unwrap())
        .await
        .expect_err("not mallory's");
    assert!(matches!(error, TsError::NotFound(_)), "{error:?}");
    // Bob's table is untouched.
    assert_eq!(
        store.list_tables(&tenant("bob"), None).await.unwrap().len(),
        1
    );
}

/// Creates carol's `transit.people_count` and registers DESCRIBE's answer for the given number
/// of reads.
async fn people_count(moto: &MotoServer, store: &TimestreamStore, reads: usize) {
    let origin = test_origin();
    write_json(
        store,
        &tenant("carol"),
        &table("transit", "people_count"),
        &[json!({"time": origin.to_rfc3339(), "dimensions": {"stop_id": "S1"}, "measures": {"count": 1}})],
    )
    .await
    .expect("create the table");
    answer(
        moto,
        &format!("DESCRIBE {FROM}"),
        vec![describe_answer(); reads],
    )
    .await;
}

#[tokio::test]
async fn latest_values_are_read_from_the_query_answer() {
    let moto = MotoServer::start();
    let store = store(&moto).await;
    people_count(&moto, &store, 1).await;
    // A dimension value with a quote travels as a literal with the quote doubled.
    let sql = format!(
        "SELECT \"line_id\", \"stop_id\", max(time) AS \"time\", max_by(\"count\", time) AS \"count\", \
         max_by(\"door\", time) AS \"door\" FROM {FROM} WHERE measure_name = 'membrain' \
         AND \"line_id\" = 'O''Connell St' GROUP BY \"line_id\", \"stop_id\""
    );
    let columns = [
        ("line_id", "VARCHAR"),
        ("stop_id", "VARCHAR"),
        ("time", "TIMESTAMP"),
        ("count", "BIGINT"),
        ("door", "VARCHAR"),
    ];
    answer(
        &moto,
        &sql,
        vec![page(
            &columns,
            &[
                &[
                    Some("O'Connell St"),
                    Some("S2"),
                    Some("2026-11-26 14:05:00.000000000"),
                    Some("7"),
                    None,
                ],
                &[
                    Some("O'Connell St"),
                    Some("S1"),
                    Some("2026-11-26 14:04:00.250000000"),
                    Some("3"),
                    Some("open"),
                ],
            ],
            None,
        )],
    )
    .await;
    let latest = store
        .latest(
            &tenant("carol"),
            &LatestQuery {
                table: table("transit", "people_count"),
                dimensions: DimensionFilter::new([(name("line_id"), "O'Connell St".into())]),
                measure: None,
            },
            &ReadLimits::default(),
        )
        .await
        .expect("latest");
    assert!(!latest.truncated);
    let series: Vec<SeriesView<'_>> = latest
        .series
        .iter()
        .map(|s| {
            (
                s.dimensions.get("stop_id"),
                s.points[0].time.to_rfc3339(),
                s.points[0]
                    .measures
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.clone()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        series,
        [
            (
                Some("S1"),
                "2026-11-26T14:04:00.250Z".into(),
                vec![
                    ("count".into(), MeasureValue::Bigint(3)),
                    ("door".into(), MeasureValue::Varchar("open".into()))
                ]
            ),
            (
                Some("S2"),
                "2026-11-26T14:05:00Z".into(),
                vec![("count".into(), MeasureValue::Bigint(7))]
            ),
        ],
        "series sorted by dimensions; a NULL measure is absent"
    );
}

#[tokio::test]
async fn ranges_follow_next_token_pages_and_bins_parse() {
    let moto = MotoServer::start();
    let store = store(&moto).await;
    people_count(&moto, &store, 3).await;
    let start = Timestamp::parse("2026-11-26T14:00:00Z").unwrap();
    let end = Timestamp::parse("2026-11-26T14:03:00Z").unwrap();
    let limits = ReadLimits::default();
    let base = RangeQuery {
        table: table("transit", "people_count"),
        start,
        end,
        dimensions: DimensionFilter::new([(name("stop_id"), "S1".into())]),
        measure: Some(name("count")),
        bin: None,
        aggregate: None,
    };
    let bounds = format!(
        "WHERE measure_name = 'membrain' AND \"stop_id\" = 'S1' AND time >= from_nanoseconds({}) \
         AND time < from_nanoseconds({}) AND (\"count\" IS NOT NULL)",
        nanos(start),
        nanos(end)
    );

    // Raw records over two pages.
    let raw_sql = format!(
        "SELECT \"line_id\", \"stop_id\", time, \"count\" FROM {FROM} {bounds} ORDER BY time LIMIT {}",
        limits.max_scan_rows + 1
    );
    let columns = [
        ("line_id", "VARCHAR"),
        ("stop_id", "VARCHAR"),
        ("time", "TIMESTAMP"),
        ("count", "BIGINT"),
    ];
    answer(
        &moto,
        &raw_sql,
        vec![
            page(
                &columns,
                &[&[
                    None,
                    Some("S1"),
                    Some("2026-11-26 14:00:00.000000000"),
                    Some("0"),
                ]],
                Some("page-2"),
            ),
            page(&columns, &[], Some("page-3")),
            page(
                &columns,
                &[&[
                    None,
                    Some("S1"),
                    Some("2026-11-26 14:00:20.000000000"),
                    Some("1"),
                ]],
                None,
            ),
        ],
    )
    .await;
    let raw = store
        .range(&tenant("carol"), &base, &limits)
        .await
        .expect("raw range");
    assert_eq!(raw.series.len(), 1);
    let points: Vec<(String, MeasureValue)> = raw.series[0]
        .points
        .iter()
        .map(|p| (p.time.to_rfc3339(), p.measures[0].1.clone()))
        .collect();
    assert_eq!(
        points,
        [
            ("2026-11-26T14:00:00Z".into(), MeasureValue::Bigint(0)),
            ("2026-11-26T14:00:20Z".into(), MeasureValue::Bigint(1)),
        ]
    );

    // One-minute bins, averaged.
    let binned_sql = format!(
        "SELECT \"line_id\", \"stop_id\", bin(time, 1m) AS \"time\", avg(\"count\") AS \"count\" FROM {FROM} \
         {bounds} GROUP BY \"line_id\", \"stop_id\", bin(time, 1m) LIMIT {}",
        limits.max_scan_rows + 1
    );
    let columns = [
        ("line_id", "VARCHAR"),
        ("stop_id", "VARCHAR"),
        ("time", "TIMESTAMP"),
        ("count", "DOUBLE"),
    ];
    answer(
        &moto,
        &binned_sql,
        vec![page(
            &columns,
            &[
                &[
                    None,
                    Some("S1"),
                    Some("2026-11-26 14:01:00.000000000"),
                    Some("4.0"),
                ],
                &[
                    None,
                    Some("S1"),
                    Some("2026-11-26 14:00:00.000000000"),
                    Some("1.0"),
                ],
            ],
            None,
        )],
    )
    .await;
    let binned = store
        .range(
            &tenant("carol"),
            &RangeQuery {
                bin: Some(Bin::parse("1m").unwrap()),
                ..base.clone()
            },
            &limits,
        )
        .await
        .expect("binned");
    assert_eq!(
        binned.aggregate,
        Some(Aggregate::Avg),
        "a bin alone means avg"
    );
    let buckets: Vec<(String, MeasureValue)> = binned.series[0]
        .points
        .iter()
        .map(|p| (p.time.to_rfc3339(), p.measures[0].1.clone()))
        .collect();
    assert_eq!(
        buckets,
        [
            ("2026-11-26T14:00:00Z".into(), MeasureValue::Double(1.0)),
            ("2026-11-26T14:01:00Z".into(), MeasureValue::Double(4.0)),
        ],
        "buckets in time order"
    );

    // A whole-range count: one point at the start; a zero count is no value.
    let count_sql = format!(
        "SELECT \"line_id\", \"stop_id\", count(\"count\") AS \"count\" FROM {FROM} {bounds} \
         GROUP BY \"line_id\", \"stop_id\" LIMIT {}",
        limits.max_scan_rows + 1
    );
    let columns = [
        ("line_id", "VARCHAR"),
        ("stop_id", "VARCHAR"),
        ("count", "BIGINT"),
    ];
    answer(
        &moto,
        &count_sql,
        vec![page(
            &columns,
            &[
                &[None, Some("S1"), Some("9")],
                &[Some("L1"), Some("S1"), Some("0")],
            ],
            None,
        )],
    )
    .await;
    let counted = store
        .range(
            &tenant("carol"),
            &RangeQuery {
                aggregate: Some(Aggregate::Count),
                ..base
            },
            &limits,
        )
        .await
        .expect("count");
    assert_eq!(counted.series.len(), 1, "{counted:?}");
    assert_eq!(counted.series[0].points[0].time, start);
    assert_eq!(
        counted.series[0].points[0].measures[0].1,
        MeasureValue::Bigint(9)
    );
}

#[tokio::test]
async fn describe_and_scan_read_counts_and_stop_at_the_scan_limit() {
    let moto = MotoServer::start();
    let store = store(&moto).await;
    people_count(&moto, &store, 4).await;
    let carol = tenant("carol");
    let people = table("transit", "people_count");
    answer(
        &moto,
        &format!(
            "SELECT count(*) AS \"row_count\", min(time) AS \"earliest\", max(time) AS \"latest\" FROM {FROM} \
             WHERE measure_name = 'membrain'"
        ),
        vec![page(
            &[("row_count", "BIGINT"), ("earliest", "TIMESTAMP"), ("latest", "TIMESTAMP")],
            &[&[Some("10"), Some("2026-11-26 14:00:00.000000000"), Some("2026-11-26 14:02:40.000000000")]],
            None,
        )],
    )
    .await;
    answer(
        &moto,
        &format!(
            "SELECT count(*) AS \"series_count\" FROM (SELECT DISTINCT \"line_id\", \"stop_id\" FROM {FROM} \
             WHERE measure_name = 'membrain')"
        ),
        vec![page(&[("series_count", "BIGINT")], &[&[Some("2")]], None)],
    )
    .await;
    let description = store
        .describe_table(&carol, &people)
        .await
        .expect("describe");
    assert_eq!((description.row_count, description.series_count), (10, 2));
    assert_eq!(description.retention, "365d");
    assert_eq!(
        description.earliest.unwrap().to_rfc3339(),
        "2026-11-26T14:00:00Z"
    );
    assert_eq!(
        description.latest.unwrap().to_rfc3339(),
        "2026-11-26T14:02:40Z"
    );
    let dimensions: Vec<&str> = description.dimensions.iter().map(|d| d.as_str()).collect();
    assert_eq!(dimensions, ["line_id", "stop_id"]);
    let measures: Vec<(&str, &str)> = description
        .measures
        .iter()
        .map(|m| (m.name.as_str(), m.kind.as_str()))
        .collect();
    assert_eq!(measures, [("count", "bigint"), ("door", "varchar")]);

    // A scan answered with more rows than the limit is refused, not cut.
    let limits = ReadLimits {
        max_scan_rows: 1,
        ..ReadLimits::default()
    };
    let columns = [
        ("line_id", "VARCHAR"),
        ("stop_id", "VARCHAR"),
        ("time", "TIMESTAMP"),
        ("count", "BIGINT"),
        ("door", "VARCHAR"),
    ];
    let row: &[Option<&str>] = &[
        None,
        Some("S1"),
        Some("2026-11-26 14:00:00.000000000"),
        Some("1"),
        None,
    ];
    answer(
        &moto,
        &format!(
            "SELECT \"line_id\", \"stop_id\", time, \"count\", \"door\" FROM {FROM} WHERE measure_name = 'membrain' \
             AND (\"count\" IS NOT NULL OR \"door\" IS NOT NULL) ORDER BY time LIMIT 2"
        ),
        vec![page(&columns, &[row, row], None)],
    )
    .await;
    let scan = Scan {
        table: people,
        start: None,
        end: None,
        dimensions: DimensionFilter::default(),
        measures: None,
    };
    let error = store
        .scan(&carol, &scan, &limits)
        .await
        .expect_err("over the limit");
    assert!(matches!(error, TsError::Limit(_)), "{error:?}");

    // Planning a query reads the retention and the schema: DescribeTable and DESCRIBE only.
    let meta = store.table_meta(&carol, &scan.table).await.expect("meta");
    assert_eq!(meta.retention.to_string(), "365d");
    assert_eq!(meta.schema.measures.len(), 2);
    assert_eq!(meta.schema.dimensions.len(), 2);

    // A read past its deadline stops before its query is sent.
    let expired = ReadLimits {
        deadline: membrain_timeseries::Deadline::after(std::time::Duration::ZERO),
        ..ReadLimits::default()
    };
    let error = store
        .scan(&carol, &scan, &expired)
        .await
        .expect_err("past the deadline");
    assert!(
        matches!(&error, TsError::Limit(message) if message.contains("deadline")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_tenant_cannot_create_tables_past_its_quota() {
    let moto = MotoServer::start();
    let store = store(&moto).await;
    let limits = membrain_timeseries::WriteLimits {
        max_tables_per_tenant: 2,
        // Not counted on Timestream: a quota of one record changes nothing here.
        max_points_per_tenant: 1,
        ..membrain_timeseries::WriteLimits::default()
    };
    let origin = test_origin();
    let records = |count: i64| -> Vec<Json> {
        (0..count)
            .map(|i| json!({"time": origin.plus_micros(i * 1_000_000).to_rfc3339(), "measures": {"v": i}}))
            .collect()
    };
    let write = |who: &str, name: &str, count: i64| {
        let (store, who, target, limits, records) = (
            &store,
            tenant(who),
            table("quota", name),
            limits.clone(),
            records(count),
        );
        async move {
            membrain_timeseries::testing::write_json_with(store, &who, &target, &records, &limits)
                .await
        }
    };
    for name in ["first", "second"] {
        let outcome = write("alice", name, 3)
            .await
            .expect("within the table quota");
        assert_eq!(
            outcome.records_ingested, 3,
            "points are not counted on Timestream"
        );
    }
    let refused = write("alice", "third", 1).await.expect_err("a third table");
    assert!(matches!(refused, TsError::QuotaExceeded(_)), "{refused:?}");
    assert!(refused.to_string().contains("quota is 2"), "{refused}");
    assert_eq!(
        store
            .list_tables(&tenant("alice"), None)
            .await
            .unwrap()
            .len(),
        2
    );
    // Writing to a table that exists needs no new place; another tenant has its own quota.
    write("alice", "first", 2).await.expect("an existing table");
    write("bob", "third", 1).await.expect("bob's first table");
    store
        .drop_table(&tenant("alice"), &table("quota", "second"))
        .await
        .unwrap();
    write("alice", "third", 1)
        .await
        .expect("room again after a drop");
}
