//! The behaviour every [`TimeSeriesStore`] shares, as one suite each store's tests run
//! (feature `test-support`): `conformance(&store).await` panics with the broken promise.

use membrain_memory::TenantId;
use serde_json::{Value as Json, json};

use crate::{
    Aggregate, AttributeName, Bin, Deadline, DimensionFilter, LatestQuery, MeasureType,
    MeasureValue, RangeQuery, ReadLimits, Scan, Span, TableRef, TimeSeriesStore, Timestamp,
    TsError, WriteLimits, WriteOutcome, parse_records,
};

/// A tenant for tests.
pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("a valid tenant name")
}

/// A table for tests.
pub fn table(database: &str, table: &str) -> TableRef {
    TableRef::parse(database, table).expect("a valid table")
}

/// Parses and writes JSON records the way the API does, merging parse rejections.
pub async fn write_json(
    store: &dyn TimeSeriesStore,
    tenant: &TenantId,
    table: &TableRef,
    records: &[Json],
) -> Result<WriteOutcome, TsError> {
    write_json_with(store, tenant, table, records, &WriteLimits::default()).await
}

/// [`write_json`] under other limits (quotas, caps).
pub async fn write_json_with(
    store: &dyn TimeSeriesStore,
    tenant: &TenantId,
    table: &TableRef,
    records: &[Json],
    limits: &WriteLimits,
) -> Result<WriteOutcome, TsError> {
    limits.check_batch_size(records.len())?;
    let (items, rejected) = parse_records(records, limits);
    let outcome = store.write(tenant, table, items, limits).await?;
    Ok(outcome.with_rejections(rejected))
}

/// A minute boundary two hours ago: test data lives in the two hours after it.
pub fn test_origin() -> Timestamp {
    Timestamp::now()
        .plus_micros(-2 * 3_600_000_000)
        .bin_start(Bin::parse("1m").expect("a bin"))
}

fn at(origin: Timestamp, seconds: i64) -> String {
    origin.plus_micros(seconds * 1_000_000).to_rfc3339()
}

fn name(raw: &str) -> AttributeName {
    AttributeName::parse(raw).expect("a valid name")
}

fn filter(pairs: &[(&str, &str)]) -> DimensionFilter {
    DimensionFilter::new(pairs.iter().map(|(k, v)| (name(k), (*v).to_owned())))
}

/// Runs every shared behaviour against `store`, which must be empty.
pub async fn conformance(store: &dyn TimeSeriesStore) {
    writes_create_tables_and_reject_bad_records(store).await;
    latest_values_per_series(store).await;
    ranges_bins_and_aggregates(store).await;
    scans_for_queries(store).await;
    tenants_never_see_each_other(store).await;
    retention_and_drop(store).await;
    table_meta_counts_nothing(store).await;
    caps_cut_while_reading(store).await;
    reads_stop_at_their_deadline(store).await;
    quotas_refuse_whole_writes(store).await;
}

async fn writes_create_tables_and_reject_bad_records(store: &dyn TimeSeriesStore) {
    let alice = tenant("conf-alice");
    let buses = table("transit", "bus_position");
    let origin = test_origin();
    let outcome = write_json(
        store,
        &alice,
        &buses,
        &[
            json!({"time": at(origin, 0), "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {"speed": 30.5, "passengers": 12, "door": "closed"}}),
            json!({"time": at(origin, 10), "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {"speed": 20, "passengers": 14, "door": "open"}}),
        ],
    )
    .await
    .expect("the first write");
    assert_eq!(outcome.records_ingested, 2, "{outcome:?}");
    assert!(outcome.rejected_records.is_empty(), "{outcome:?}");
    assert!(outcome.table_created, "the first write creates the table");

    let future = Timestamp::now().plus_micros(3_600_000_000).to_rfc3339();
    let ancient = "1999-01-01T00:00:00Z";
    let outcome = write_json(
        store,
        &alice,
        &buses,
        &[
            json!({"time": at(origin, 20), "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {"speed": 25.0}}),
            json!({"time": at(origin, 30), "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {"speed": "fast"}}),
            json!({"time": future, "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {"speed": 1.0}}),
            json!({"time": ancient, "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {"speed": 1.0}}),
            json!({"time": at(origin, 40), "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {}}),
            json!({"time": "noon", "dimensions": {"bus_id": "B1"}, "measures": {"speed": 1.0}}),
            json!({"time": at(origin, 20), "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {"speed": 26.0}}),
            json!({"time": at(origin, 10), "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {"speed": 99.0, "passengers": 14, "door": "open"}}),
            json!({"time": at(origin, 0), "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {"speed": 30.5, "passengers": 12, "door": "closed"}}),
            json!({"time": at(origin, 50), "dimensions": {"bus_id": "B1", "line_id": "L1"},
                   "measures": {"passengers": 2.5}}),
        ],
    )
    .await
    .expect("a write with bad records");
    let reasons: Vec<(usize, &str)> = outcome
        .rejected_records
        .iter()
        .map(|r| (r.record_index, r.reason.as_str()))
        .collect();
    assert_eq!(
        outcome.records_ingested, 2,
        "record 0 is new, record 8 repeats a stored one exactly: {reasons:?}"
    );
    let rejected: Vec<usize> = reasons.iter().map(|(index, _)| *index).collect();
    assert_eq!(rejected, vec![1, 2, 3, 4, 5, 6, 7, 9], "{reasons:?}");
    let reason_of = |index: usize| {
        reasons
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, r)| *r)
            .unwrap_or("")
    };
    assert!(reason_of(1).contains("double"), "{}", reason_of(1));
    assert!(
        reason_of(2).contains("outside the time range"),
        "{}",
        reason_of(2)
    );
    assert!(
        reason_of(3).contains("outside the time range"),
        "{}",
        reason_of(3)
    );
    assert!(reason_of(4).contains("no measures"), "{}", reason_of(4));
    assert!(reason_of(5).contains("RFC 3339"), "{}", reason_of(5));
    assert!(
        reason_of(6).contains("same dimensions and time"),
        "{}",
        reason_of(6)
    );
    assert!(reason_of(7).contains("already"), "{}", reason_of(7));
    assert!(reason_of(9).contains("bigint"), "{}", reason_of(9));

    // A record for a stored series and time that brings a new measure is refused, and the
    // measure it named does not become part of the table.
    let outcome = write_json(
        store,
        &alice,
        &buses,
        &[
            json!({"time": at(origin, 0), "dimensions": {"bus_id": "B1", "line_id": "L1"},
                 "measures": {"speed": 30.5, "passengers": 12, "door": "closed", "heading": 90.0}}),
        ],
    )
    .await
    .expect("a refused repeat");
    assert_eq!(outcome.records_ingested, 0, "{outcome:?}");
    let description = store
        .describe_table(&alice, &buses)
        .await
        .expect("describe");
    assert_eq!(
        description.row_count, 3,
        "rejected records wrote nothing: {description:?}"
    );
    assert_eq!(description.series_count, 1);
    let dimensions: Vec<&str> = description.dimensions.iter().map(|d| d.as_str()).collect();
    assert_eq!(dimensions, ["bus_id", "line_id"]);
    let measures: Vec<(&str, &str)> = description
        .measures
        .iter()
        .map(|m| (m.name.as_str(), m.kind.as_str()))
        .collect();
    assert_eq!(
        measures,
        [
            ("door", "varchar"),
            ("passengers", "bigint"),
            ("speed", "double")
        ]
    );
    assert_eq!(
        description.earliest.map(|t| t.to_rfc3339()),
        Some(at(origin, 0))
    );
    assert_eq!(
        description.latest.map(|t| t.to_rfc3339()),
        Some(at(origin, 20))
    );

    let tables = store.list_tables(&alice, None).await.expect("list");
    assert_eq!(tables.len(), 1);
    assert_eq!(
        (tables[0].database.as_str(), tables[0].table.as_str()),
        ("transit", "bus_position")
    );
    let missing = store
        .describe_table(&alice, &table("transit", "nothing"))
        .await
        .expect_err("an unknown table");
    assert!(matches!(missing, TsError::NotFound(_)), "{missing:?}");
    let other_db = store
        .list_tables(
            &alice,
            Some(&crate::DatabaseName::parse("elsewhere").expect("name")),
        )
        .await;
    assert!(
        matches!(&other_db, Ok(list) if list.is_empty())
            || matches!(other_db, Err(TsError::NotFound(_))),
        "an unknown database lists nothing or is not found: {other_db:?}"
    );
}

async fn latest_values_per_series(store: &dyn TimeSeriesStore) {
    let bob = tenant("conf-bob");
    let sensors = table("transit", "sensor_data");
    let origin = test_origin();
    let mut records = Vec::new();
    for minute in 0..5 {
        for (entity, kind) in [("S1", "stop"), ("S2", "stop"), ("B7", "bus")] {
            let mut measures = json!({"temperature": 10.0 + minute as f64});
            if kind == "bus" && minute < 3 {
                measures["co2_level"] = json!(400 + minute);
            }
            records.push(json!({"time": at(origin, minute * 60), "dimensions": {"entity_id": entity, "entity_type": kind}, "measures": measures}));
        }
    }
    let outcome = write_json(store, &bob, &sensors, &records)
        .await
        .expect("write sensors");
    assert_eq!(outcome.records_ingested, 15, "{outcome:?}");
    let limits = ReadLimits::default();
    let all = store
        .latest(
            &bob,
            &LatestQuery {
                table: sensors.clone(),
                dimensions: DimensionFilter::default(),
                measure: None,
            },
            &limits,
        )
        .await
        .expect("latest");
    assert_eq!(all.series.len(), 3);
    for series in &all.series {
        assert_eq!(series.points.len(), 1);
        assert_eq!(series.points[0].time.to_rfc3339(), at(origin, 240));
    }
    let stops = store
        .latest(
            &bob,
            &LatestQuery {
                table: sensors.clone(),
                dimensions: filter(&[("entity_type", "stop")]),
                measure: None,
            },
            &limits,
        )
        .await
        .expect("latest of stops");
    assert_eq!(stops.series.len(), 2);
    let co2 = store
        .latest(
            &bob,
            &LatestQuery {
                table: sensors.clone(),
                dimensions: DimensionFilter::default(),
                measure: Some(name("co2_level")),
            },
            &limits,
        )
        .await
        .expect("latest co2");
    assert_eq!(co2.series.len(), 1, "only the bus has co2: {co2:?}");
    let point = &co2.series[0].points[0];
    assert_eq!(
        point.time.to_rfc3339(),
        at(origin, 120),
        "the latest record that has co2"
    );
    assert_eq!(
        point.measures,
        vec![(name("co2_level"), MeasureValue::Bigint(402))]
    );
    let unknown = store
        .latest(
            &bob,
            &LatestQuery {
                table: sensors.clone(),
                dimensions: DimensionFilter::default(),
                measure: Some(name("pressure")),
            },
            &limits,
        )
        .await
        .expect_err("an unknown measure");
    assert!(
        unknown.to_string().contains("temperature"),
        "names the measures there are: {unknown}"
    );
    let capped = store
        .latest(
            &bob,
            &LatestQuery {
                table: sensors.clone(),
                dimensions: DimensionFilter::default(),
                measure: None,
            },
            &ReadLimits {
                max_series: 2,
                ..ReadLimits::default()
            },
        )
        .await
        .expect("capped latest");
    assert_eq!((capped.series.len(), capped.truncated), (2, true));
}

async fn ranges_bins_and_aggregates(store: &dyn TimeSeriesStore) {
    let carol = tenant("conf-carol");
    let counts = table("transit", "people_count");
    let origin = test_origin();
    // Stop S1: a count every 20 s for 3 minutes: 0, 1, 2, … 8.
    let records: Vec<Json> = (0..9)
        .map(|i| json!({"time": at(origin, i * 20), "dimensions": {"stop_id": "S1"}, "measures": {"count": i}}))
        .chain(std::iter::once(json!({"time": at(origin, 0), "dimensions": {"stop_id": "S2"}, "measures": {"count": 100}})))
        .collect();
    write_json(store, &carol, &counts, &records)
        .await
        .expect("write counts");
    let limits = ReadLimits::default();
    let base = RangeQuery {
        table: counts.clone(),
        start: origin,
        end: origin.plus_micros(180_000_000),
        dimensions: filter(&[("stop_id", "S1")]),
        measure: None,
        bin: None,
        aggregate: None,
    };
    let raw = store
        .range(&carol, &base, &limits)
        .await
        .expect("raw range");
    assert_eq!(raw.series.len(), 1);
    let values: Vec<MeasureValue> = raw.series[0]
        .points
        .iter()
        .map(|p| p.measures[0].1.clone())
        .collect();
    assert_eq!(
        values,
        (0..9).map(MeasureValue::Bigint).collect::<Vec<_>>(),
        "in time order"
    );

    let binned = store
        .range(
            &carol,
            &RangeQuery {
                bin: Some(Bin::parse("1m").expect("bin")),
                aggregate: Some(Aggregate::Avg),
                ..base.clone()
            },
            &limits,
        )
        .await
        .expect("binned");
    let buckets: Vec<(String, MeasureValue)> = binned.series[0]
        .points
        .iter()
        .map(|p| (p.time.to_rfc3339(), p.measures[0].1.clone()))
        .collect();
    assert_eq!(
        buckets,
        vec![
            (at(origin, 0), MeasureValue::Double(1.0)),
            (at(origin, 60), MeasureValue::Double(4.0)),
            (at(origin, 120), MeasureValue::Double(7.0)),
        ]
    );
    for (aggregate, expected) in [
        (Aggregate::Sum, MeasureValue::Bigint(36)),
        (Aggregate::Count, MeasureValue::Bigint(9)),
        (Aggregate::Min, MeasureValue::Bigint(0)),
        (Aggregate::Max, MeasureValue::Bigint(8)),
        (Aggregate::First, MeasureValue::Bigint(0)),
        (Aggregate::Last, MeasureValue::Bigint(8)),
        (Aggregate::Avg, MeasureValue::Double(4.0)),
    ] {
        let whole = store
            .range(
                &carol,
                &RangeQuery {
                    aggregate: Some(aggregate),
                    ..base.clone()
                },
                &limits,
            )
            .await
            .expect("whole-range aggregate");
        assert_eq!(whole.series[0].points.len(), 1, "{aggregate}");
        assert_eq!(
            whole.series[0].points[0].measures[0].1, expected,
            "{aggregate}"
        );
    }
    let both = store
        .range(
            &carol,
            &RangeQuery {
                dimensions: DimensionFilter::default(),
                aggregate: Some(Aggregate::Max),
                ..base.clone()
            },
            &limits,
        )
        .await
        .expect("both stops");
    assert_eq!(both.series.len(), 2, "one entry per series");

    let backwards = store
        .range(
            &carol,
            &RangeQuery {
                start: base.end,
                end: base.start,
                ..base.clone()
            },
            &limits,
        )
        .await
        .expect_err("start after end");
    assert!(backwards.to_string().contains("before end"), "{backwards}");
    let too_many = store
        .range(
            &carol,
            &RangeQuery {
                start: origin.plus_micros(-40 * 86_400_000_000),
                bin: Some(Bin::parse("1s").expect("bin")),
                ..base.clone()
            },
            &limits,
        )
        .await
        .expect_err("too many buckets");
    assert!(matches!(too_many, TsError::Limit(_)), "{too_many:?}");
    let missing = store
        .range(
            &carol,
            &RangeQuery {
                table: table("transit", "nope"),
                ..base.clone()
            },
            &limits,
        )
        .await
        .expect_err("unknown table");
    assert!(matches!(missing, TsError::NotFound(_)), "{missing:?}");
    let capped = store
        .range(
            &carol,
            &base,
            &ReadLimits {
                max_points: 4,
                ..ReadLimits::default()
            },
        )
        .await
        .expect("capped range");
    assert_eq!((capped.series[0].points.len(), capped.truncated), (4, true));
}

async fn scans_for_queries(store: &dyn TimeSeriesStore) {
    let carol = tenant("conf-carol");
    let counts = table("transit", "people_count");
    let origin = test_origin();
    let scan = Scan {
        table: counts.clone(),
        start: Some(origin.plus_micros(60_000_000)),
        end: Some(origin.plus_micros(120_000_000)),
        dimensions: filter(&[("stop_id", "S1")]),
        measures: None,
    };
    let series = store
        .scan(&carol, &scan, &ReadLimits::default())
        .await
        .expect("scan");
    let times: Vec<String> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.time.to_rfc3339()))
        .collect();
    assert_eq!(times, vec![at(origin, 60), at(origin, 80), at(origin, 100)]);
    // A record without the named measure is still a row (its measure is NULL to SQL).
    let bob = tenant("conf-bob");
    let bus_co2 = Scan {
        table: table("transit", "sensor_data"),
        start: None,
        end: None,
        dimensions: filter(&[("entity_id", "B7")]),
        measures: Some(vec![name("co2_level")]),
    };
    let series = store
        .scan(&bob, &bus_co2, &ReadLimits::default())
        .await
        .expect("scan co2");
    let points: Vec<usize> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.measures.len()))
        .collect();
    assert_eq!(
        points,
        vec![1, 1, 1, 0, 0],
        "every record, co2 where it has one: {series:?}"
    );
    let too_much = store
        .scan(
            &carol,
            &Scan {
                start: None,
                end: None,
                dimensions: DimensionFilter::default(),
                ..scan.clone()
            },
            &ReadLimits {
                max_scan_rows: 5,
                ..ReadLimits::default()
            },
        )
        .await
        .expect_err("over the scan limit");
    assert!(matches!(too_much, TsError::Limit(_)), "{too_much:?}");
}

async fn tenants_never_see_each_other(store: &dyn TimeSeriesStore) {
    let alice = tenant("conf-alice");
    let mallory = tenant("conf-mallory");
    let buses = table("transit", "bus_position");
    assert!(
        store
            .list_tables(&mallory, None)
            .await
            .expect("list")
            .is_empty()
    );
    let error = store
        .describe_table(&mallory, &buses)
        .await
        .expect_err("not mallory's");
    assert!(matches!(error, TsError::NotFound(_)), "{error:?}");
    let limits = ReadLimits::default();
    let latest = store
        .latest(
            &mallory,
            &LatestQuery {
                table: buses.clone(),
                dimensions: DimensionFilter::default(),
                measure: None,
            },
            &limits,
        )
        .await;
    assert!(matches!(latest, Err(TsError::NotFound(_))), "{latest:?}");
    // Mallory's own table of the same name is hers alone.
    let origin = test_origin();
    let outcome = write_json(store, &mallory, &buses, &[json!({"time": at(origin, 0), "dimensions": {"bus_id": "M"}, "measures": {"speed": "x"}})])
        .await
        .expect("mallory writes");
    assert_eq!(
        outcome.records_ingested, 1,
        "her schema is her own: {outcome:?}"
    );
    let alices = store
        .describe_table(&alice, &buses)
        .await
        .expect("alice's table");
    assert_eq!(alices.series_count, 1, "alice still has one series");
}

async fn retention_and_drop(store: &dyn TimeSeriesStore) {
    let dave = tenant("conf-dave");
    let readings = table("plant", "readings");
    let now = Timestamp::now();
    let records: Vec<Json> = [-3 * 3_600, -30 * 60, -60]
        .iter()
        .map(|seconds| json!({"time": now.plus_micros(seconds * 1_000_000).to_rfc3339(), "dimensions": {"sensor": "t1"}, "measures": {"value": 1.5}}))
        .collect();
    write_json(store, &dave, &readings, &records)
        .await
        .expect("write readings");
    let description = store
        .set_retention(&dave, &readings, Span::parse("1h").expect("span"))
        .await
        .expect("shorter retention");
    assert_eq!(description.retention, "1h");
    assert_eq!(
        description.row_count, 2,
        "the record older than an hour is gone"
    );
    let outcome = write_json(store, &dave, &readings, &[json!({"time": now.plus_micros(-2 * 3_600_000_000).to_rfc3339(), "dimensions": {"sensor": "t1"}, "measures": {"value": 2.0}})])
        .await
        .expect("a write behind retention");
    assert_eq!(outcome.records_ingested, 0);
    store.drop_table(&dave, &readings).await.expect("drop");
    let gone = store
        .describe_table(&dave, &readings)
        .await
        .expect_err("dropped");
    assert!(matches!(gone, TsError::NotFound(_)), "{gone:?}");
    let again = store
        .drop_table(&dave, &readings)
        .await
        .expect_err("dropped twice");
    assert!(matches!(again, TsError::NotFound(_)), "{again:?}");
}

async fn table_meta_counts_nothing(store: &dyn TimeSeriesStore) {
    let alice = tenant("conf-alice");
    let buses = table("transit", "bus_position");
    let meta = store.table_meta(&alice, &buses).await.expect("table meta");
    assert_eq!(meta.table, buses);
    assert_eq!(meta.retention, crate::DEFAULT_RETENTION);
    let measures: Vec<(&str, MeasureType)> = meta
        .schema
        .measures
        .iter()
        .map(|(name, kind)| (name.as_str(), *kind))
        .collect();
    assert_eq!(
        measures,
        [
            ("door", MeasureType::Varchar),
            ("passengers", MeasureType::Bigint),
            ("speed", MeasureType::Double)
        ]
    );
    assert_eq!(meta.schema.dimensions.len(), 2);
    for (who, which) in [
        (tenant("conf-mallory-2"), buses.clone()),
        (alice.clone(), table("transit", "nothing")),
    ] {
        let missing = store.table_meta(&who, &which).await.expect_err("not there");
        assert!(matches!(missing, TsError::NotFound(_)), "{missing:?}");
    }
}

/// Eight series of 50 records each, for the caps and deadline checks.
async fn many_series(store: &dyn TimeSeriesStore) -> (TenantId, TableRef, Timestamp) {
    let erin = tenant("conf-erin");
    let wide = table("plant", "many_series");
    let origin = test_origin();
    let records: Vec<Json> = (0..8)
        .flat_map(|sensor| {
            (0..50).map(move |i| {
                json!({"time": at(origin, i), "dimensions": {"sensor": format!("s{sensor}")},
                       "measures": {"value": i, "label": "x"}})
            })
        })
        .collect();
    if store.table_meta(&erin, &wide).await.is_err() {
        let outcome = write_json(store, &erin, &wide, &records)
            .await
            .expect("write many series");
        assert_eq!(outcome.records_ingested, 400, "{outcome:?}");
    }
    (erin, wide, origin)
}

async fn caps_cut_while_reading(store: &dyn TimeSeriesStore) {
    let (erin, wide, origin) = many_series(store).await;
    let range = RangeQuery {
        table: wide.clone(),
        start: origin,
        end: origin.plus_micros(3_600_000_000),
        dimensions: DimensionFilter::default(),
        measure: None,
        bin: None,
        aggregate: None,
    };
    for (max_series, max_points, series, points) in [
        (100, 1, 1, 1),
        (100, 75, 2, 75),
        (3, 10_000, 3, 150),
        (1, 1, 1, 1),
    ] {
        let limits = ReadLimits {
            max_series,
            max_points,
            ..ReadLimits::default()
        };
        let answer = store.range(&erin, &range, &limits).await.expect("range");
        let total: usize = answer.series.iter().map(|s| s.points.len()).sum();
        assert_eq!(
            (answer.series.len(), total, answer.truncated),
            (series, points, true),
            "max_series {max_series}, max_points {max_points}"
        );
    }
    let everything = store
        .range(&erin, &range, &ReadLimits::default())
        .await
        .expect("all of it");
    let total: usize = everything.series.iter().map(|s| s.points.len()).sum();
    assert_eq!((total, everything.truncated), (400, false));
    let exact = ReadLimits {
        max_series: 8,
        max_points: 400,
        ..ReadLimits::default()
    };
    let answer = store.range(&erin, &range, &exact).await.expect("exact");
    assert!(!answer.truncated, "exactly at the caps is not truncated");

    let latest = store
        .latest(
            &erin,
            &LatestQuery {
                table: wide.clone(),
                dimensions: DimensionFilter::default(),
                measure: None,
            },
            &ReadLimits {
                max_series: 3,
                ..ReadLimits::default()
            },
        )
        .await
        .expect("latest");
    assert_eq!((latest.series.len(), latest.truncated), (3, true));

    let scan = Scan {
        table: wide.clone(),
        start: None,
        end: None,
        dimensions: DimensionFilter::default(),
        measures: None,
    };
    let over = store
        .scan(
            &erin,
            &scan,
            &ReadLimits {
                max_scan_rows: 399,
                ..ReadLimits::default()
            },
        )
        .await
        .expect_err("one record over the scan cap");
    assert!(matches!(over, TsError::Limit(_)), "{over:?}");
    let at_cap = store
        .scan(
            &erin,
            &scan,
            &ReadLimits {
                max_scan_rows: 400,
                ..ReadLimits::default()
            },
        )
        .await
        .expect("exactly the scan cap");
    assert_eq!(at_cap.iter().map(|s| s.points.len()).sum::<usize>(), 400);
}

async fn reads_stop_at_their_deadline(store: &dyn TimeSeriesStore) {
    let (erin, wide, origin) = many_series(store).await;
    let expired = ReadLimits {
        deadline: Deadline::after(std::time::Duration::ZERO),
        ..ReadLimits::default()
    };
    let is_deadline = |result: Result<(), TsError>, what: &str| match result {
        Err(TsError::Limit(message)) if message.contains("deadline") => {}
        other => panic!("{what} past its deadline answered {other:?}"),
    };
    let range = RangeQuery {
        table: wide.clone(),
        start: origin,
        end: origin.plus_micros(3_600_000_000),
        dimensions: DimensionFilter::default(),
        measure: None,
        bin: None,
        aggregate: None,
    };
    is_deadline(
        store.range(&erin, &range, &expired).await.map(drop),
        "a range",
    );
    is_deadline(
        store
            .range(
                &erin,
                &RangeQuery {
                    bin: Some(Bin::parse("1m").expect("bin")),
                    ..range.clone()
                },
                &expired,
            )
            .await
            .map(drop),
        "a binned range",
    );
    let scan = Scan {
        table: wide.clone(),
        start: None,
        end: None,
        dimensions: DimensionFilter::default(),
        measures: None,
    };
    is_deadline(store.scan(&erin, &scan, &expired).await.map(drop), "a scan");
    let latest = LatestQuery {
        table: wide.clone(),
        dimensions: DimensionFilter::default(),
        measure: None,
    };
    is_deadline(
        store.latest(&erin, &latest, &expired).await.map(drop),
        "a latest read",
    );
}

async fn quotas_refuse_whole_writes(store: &dyn TimeSeriesStore) {
    let quinn = tenant("conf-quinn");
    let origin = test_origin();
    let limits = WriteLimits {
        max_tables_per_tenant: 2,
        max_points_per_tenant: 10,
        ..WriteLimits::default()
    };
    let records = |from: i64, count: i64| -> Vec<Json> {
        (from..from + count)
            .map(|i| json!({"time": at(origin, i), "dimensions": {"k": "v"}, "measures": {"x": i}}))
            .collect()
    };
    let (first, second, third) = (
        table("quota", "first"),
        table("quota", "second"),
        table("quota", "third"),
    );
    let points = |outcome: Result<WriteOutcome, TsError>| {
        outcome.expect("a write within the quotas").records_ingested
    };
    assert_eq!(
        points(write_json_with(store, &quinn, &first, &records(0, 6), &limits).await),
        6
    );
    // 5 more would make 11: refused whole, and the message says 4 fit.
    let over = write_json_with(store, &quinn, &first, &records(6, 5), &limits)
        .await
        .expect_err("over the points quota");
    let TsError::QuotaExceeded(message) = &over else {
        panic!("{over:?}");
    };
    for needle in ["6 of the 10", "4 more fit", "nothing was", "retention"] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
    assert_eq!(over.code(), "quota_exceeded");
    let stored = store
        .describe_table(&quinn, &first)
        .await
        .expect("describe");
    assert_eq!(
        stored.row_count, 6,
        "nothing of the refused write is stored"
    );
    // Repeats of stored records add nothing, so they pass at the quota; new ones fill it.
    assert_eq!(
        points(write_json_with(store, &quinn, &first, &records(2, 8), &limits).await),
        8
    );
    let full = write_json_with(store, &quinn, &second, &records(0, 1), &limits)
        .await
        .expect_err("the quota is full");
    assert!(
        full.to_string().contains("0 more fit"),
        "{full}: a new table's records count too"
    );
    assert!(
        store.table_meta(&quinn, &second).await.is_err(),
        "the refused write did not create its table"
    );

    // Tables: two fit, the third is refused and not created.
    let roomy = WriteLimits {
        max_points_per_tenant: 1_000,
        ..limits.clone()
    };
    assert_eq!(
        points(write_json_with(store, &quinn, &second, &records(0, 1), &roomy).await),
        1
    );
    let third_table = write_json_with(store, &quinn, &third, &records(0, 1), &roomy)
        .await
        .expect_err("over the table quota");
    let TsError::QuotaExceeded(message) = &third_table else {
        panic!("{third_table:?}");
    };
    assert!(
        message.contains("already has 2 tables") && message.contains("quota is 2"),
        "{message}"
    );
    let listed = store.list_tables(&quinn, None).await.expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Other tenants have quotas of their own.
    assert_eq!(
        points(
            write_json_with(
                store,
                &tenant("conf-quinn-neighbour"),
                &third,
                &records(0, 10),
                &limits
            )
            .await
        ),
        10
    );

    // Dropping a table frees its records and its place.
    store.drop_table(&quinn, &first).await.expect("drop");
    assert_eq!(
        points(write_json_with(store, &quinn, &third, &records(0, 9), &limits).await),
        9
    );
    // A shorter retention frees the records it drops.
    let now = Timestamp::now();
    let old_and_new: Vec<Json> = [-90 * 60, -60]
        .iter()
        .map(|seconds| json!({"time": now.plus_micros(seconds * 1_000_000).to_rfc3339(), "dimensions": {"k": "v"}, "measures": {"x": 1}}))
        .collect();
    let shrinking = table("quota", "shrinking");
    store.drop_table(&quinn, &third).await.expect("drop");
    assert_eq!(
        points(write_json_with(store, &quinn, &shrinking, &old_and_new, &limits).await),
        2
    );
    // 1 in the second table and 2 in the shrinking one: 7 more make 10.
    assert_eq!(
        points(write_json_with(store, &quinn, &second, &records(10, 7), &limits).await),
        7
    );
    let over = write_json_with(store, &quinn, &second, &records(20, 1), &limits)
        .await
        .expect_err("full again");
    assert!(over.to_string().contains("0 more fit"), "{over}");
    store
        .set_retention(&quinn, &shrinking, Span::parse("1h").expect("span"))
        .await
        .expect("shorter retention");
    assert_eq!(
        points(write_json_with(store, &quinn, &second, &records(20, 1), &limits).await),
        1,
        "the record the retention dropped made room for one"
    );
}
