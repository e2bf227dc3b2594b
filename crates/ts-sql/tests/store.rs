//! The SQL time-series store on SQLite and PostgreSQL: the shared conformance suite, restarts,
//! several stateless tasks on one database, concurrent writers, and migrations beside the
//! memory store's.

mod common;

use common::{BACKENDS, TestDatabase, store};
use membrain_memory::TenantId;
use membrain_timeseries::testing::{conformance, table, tenant, test_origin, write_json};
use membrain_timeseries::{
    DimensionFilter, LatestQuery, MeasureValue, ReadLimits, TableRef, TimeSeriesStore, Timestamp,
};
use membrain_ts_sql::{MIGRATIONS_TABLE, SqlTimeSeriesStore, SqlTsOptions};
use serde_json::{Value as Json, json};
use sqlx::{AssertSqlSafe, Connection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_sqlite_and_postgres() {
    for backend in BACKENDS {
        let database = TestDatabase::new(backend).await;
        let store = store(&database).await;
        conformance(&store).await;
        store.close().await;
    }
}

fn bus_record(origin: Timestamp, seconds: i64, bus: &str, speed: f64) -> Json {
    json!({
        "time": origin.plus_micros(seconds * 1_000_000).to_rfc3339(),
        "dimensions": {"bus_id": bus},
        "measures": {"speed": speed, "stop": "S1"},
    })
}

async fn latest_speed(store: &dyn TimeSeriesStore, who: &TenantId, buses: &TableRef) -> Vec<f64> {
    let latest = store
        .latest(
            who,
            &LatestQuery {
                table: buses.clone(),
                dimensions: DimensionFilter::default(),
                measure: None,
            },
            &ReadLimits::default(),
        )
        .await
        .expect("latest");
    latest
        .series
        .iter()
        .map(|series| {
            match series.points[0]
                .measures
                .iter()
                .find(|(n, _)| n.as_str() == "speed")
            {
                Some((_, MeasureValue::Double(speed))) => *speed,
                other => panic!("a double speed, not {other:?}"),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_tables_records_and_schema() {
    for backend in BACKENDS {
        let database = TestDatabase::new(backend).await;
        let who = tenant("reopen");
        let buses = table("transit", "bus_position");
        let origin = test_origin();
        let before = {
            let store = store(&database).await;
            let records: Vec<Json> = (0..20)
                .map(|i| {
                    bus_record(
                        origin,
                        i * 10,
                        if i % 2 == 0 { "B1" } else { "B2" },
                        i as f64,
                    )
                })
                .collect();
            let outcome = write_json(&store, &who, &buses, &records)
                .await
                .expect("write");
            assert_eq!(outcome.records_ingested, 20, "{backend:?}");
            let before = store.describe_table(&who, &buses).await.expect("describe");
            store.close().await;
            before
        };
        let store = store(&database).await;
        let after = store
            .describe_table(&who, &buses)
            .await
            .expect("describe again");
        assert_eq!(after, before, "{backend:?}");
        assert_eq!((after.row_count, after.series_count), (20, 2));
        assert_eq!(latest_speed(&store, &who, &buses).await, vec![18.0, 19.0]);
        // The schema survived too: a varchar speed is still refused.
        let outcome = write_json(
            &store,
            &who,
            &buses,
            &[json!({"time": origin.to_rfc3339(), "dimensions": {"bus_id": "B3"}, "measures": {"speed": "fast"}})],
        )
        .await
        .expect("write");
        assert_eq!(
            outcome.rejected_records.len(),
            1,
            "{backend:?}: {outcome:?}"
        );
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_database_see_each_others_writes() {
    for backend in BACKENDS {
        let database = TestDatabase::new(backend).await;
        let (first, second) = (store(&database).await, store(&database).await);
        let who = tenant("tasks");
        let buses = table("transit", "bus_position");
        let origin = test_origin();
        let outcome = write_json(&first, &who, &buses, &[bus_record(origin, 0, "B1", 10.0)])
            .await
            .expect("first writes");
        assert!(outcome.table_created);
        assert_eq!(
            latest_speed(&second, &who, &buses).await,
            vec![10.0],
            "{backend:?}"
        );
        let outcome = write_json(&second, &who, &buses, &[bus_record(origin, 10, "B1", 12.0)])
            .await
            .expect("second writes");
        assert!(!outcome.table_created, "the second task found the table");
        assert_eq!(
            latest_speed(&first, &who, &buses).await,
            vec![12.0],
            "{backend:?}"
        );
        // A repeat of the other task's record is accepted unchanged, a different one refused.
        let repeat = write_json(&first, &who, &buses, &[bus_record(origin, 10, "B1", 12.0)])
            .await
            .expect("repeat");
        assert_eq!(repeat.records_ingested, 1, "{backend:?}: {repeat:?}");
        let different = write_json(&first, &who, &buses, &[bus_record(origin, 10, "B1", 13.0)])
            .await
            .expect("overwrite attempt");
        assert_eq!(different.records_ingested, 0, "{backend:?}: {different:?}");
        assert!(
            different.rejected_records[0].reason.contains("already"),
            "{different:?}"
        );
        assert_eq!(
            latest_speed(&second, &who, &buses).await,
            vec![12.0],
            "{backend:?}"
        );
        first.close().await;
        second.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_never_lose_or_half_write_a_batch() {
    const WRITERS: usize = 6;
    const BATCHES: i64 = 5;
    const RECORDS: i64 = 100;
    for backend in BACKENDS {
        let database = TestDatabase::new(backend).await;
        // Two stores, as two API tasks would have.
        let stores = [store(&database).await, store(&database).await];
        let who = tenant("writers");
        let buses = table("transit", "bus_position");
        let origin = test_origin();
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let store = stores[writer % 2].clone();
            let (who, buses) = (who.clone(), buses.clone());
            tasks.push(tokio::spawn(async move {
                for batch in 0..BATCHES {
                    // Disjoint: each writer its own bus.
                    let own: Vec<Json> = (0..RECORDS)
                        .map(|i| {
                            bus_record(origin, batch * RECORDS + i, &format!("B{writer}"), 1.0)
                        })
                        .collect();
                    let outcome = write_json(&store, &who, &buses, &own).await.expect("write");
                    assert_eq!(outcome.records_ingested, RECORDS as usize, "{outcome:?}");
                    // Contended: every writer sends the same times of one bus with its own
                    // speed; exactly one batch wins each time, whole.
                    let contended: Vec<Json> = (0..RECORDS)
                        .map(|i| bus_record(origin, batch * RECORDS + i, "SHARED", writer as f64))
                        .collect();
                    let outcome = write_json(&store, &who, &buses, &contended)
                        .await
                        .expect("contended write");
                    assert!(
                        outcome.records_ingested == 0
                            || outcome.records_ingested == RECORDS as usize,
                        "a batch is admitted whole or not at all: {outcome:?}"
                    );
                }
            }));
        }
        for task in tasks {
            task.await.expect("a writer");
        }
        let description = stores[0]
            .describe_table(&who, &buses)
            .await
            .expect("describe");
        let expected = (WRITERS as i64 + 1) * BATCHES * RECORDS;
        assert_eq!(description.row_count, expected as u64, "{backend:?}");
        let scan = stores[1]
            .scan(
                &who,
                &membrain_timeseries::Scan {
                    table: buses.clone(),
                    start: None,
                    end: None,
                    dimensions: DimensionFilter::from_json(Some(&json!({"bus_id": "SHARED"})))
                        .expect("filter"),
                    measures: None,
                },
                &ReadLimits::default(),
            )
            .await
            .expect("scan");
        let points = &scan[0].points;
        assert_eq!(points.len() as i64, BATCHES * RECORDS);
        for batch in points.chunks(RECORDS as usize) {
            let speeds: Vec<&MeasureValue> = batch.iter().map(|p| &p.measures[0].1).collect();
            assert!(
                speeds.iter().all(|speed| *speed == speeds[0]),
                "{backend:?}: one writer's batch per time range, never a mix: {speeds:?}"
            );
        }
        for store in &stores {
            store.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_records_are_hidden_then_pruned() {
    for backend in BACKENDS {
        let database = TestDatabase::new(backend).await;
        let who = tenant("pruner");
        let readings = table("plant", "readings");
        let now = Timestamp::now();
        let at = |minutes: i64| now.plus_micros(-minutes * 60_000_000).to_rfc3339();
        let store = store(&database).await;
        let records: Vec<Json> = [5, 30, 180]
            .iter()
            .map(|m| json!({"time": at(*m), "dimensions": {"sensor": "t1"}, "measures": {"value": *m}}))
            .collect();
        write_json(&store, &who, &readings, &records)
            .await
            .expect("write");
        // Time passes: as if the table's retention had been an hour all along.
        sqlx::query("UPDATE ts_tables SET retention_us = $1")
            .bind(3_600_000_000_i64)
            .execute(
                &mut sqlx::AnyConnection::connect(&database.url)
                    .await
                    .expect("connect"),
            )
            .await
            .expect("shorten the retention behind the store's back");
        let description = store
            .describe_table(&who, &readings)
            .await
            .expect("describe");
        assert_eq!(
            description.row_count, 2,
            "{backend:?}: expired records are not read"
        );
        let everything = membrain_timeseries::Scan {
            table: readings.clone(),
            start: None,
            end: None,
            dimensions: DimensionFilter::default(),
            measures: None,
        };
        let scanned = store
            .scan(&who, &everything, &ReadLimits::default())
            .await
            .expect("scan");
        assert_eq!(scanned[0].points.len(), 2, "{backend:?}");
        assert_eq!(
            store.prune_expired().await.expect("prune"),
            1,
            "{backend:?}"
        );
        assert_eq!(store.prune_expired().await.expect("prune again"), 0);
        let description = store
            .describe_table(&who, &readings)
            .await
            .expect("describe");
        assert_eq!(description.row_count, 2, "{backend:?}");
        store.close().await;

        // New tables take the configured default retention.
        let options = SqlTsOptions {
            default_retention: membrain_timeseries::Span::parse("2h").expect("span"),
            ..SqlTsOptions::default()
        };
        let store = SqlTimeSeriesStore::connect(&database.url, options)
            .await
            .expect("store");
        let fresh = table("plant", "fresh");
        write_json(&store, &who, &fresh, &records[..1])
            .await
            .expect("write");
        let description = store.describe_table(&who, &fresh).await.expect("describe");
        assert_eq!(description.retention, "2h", "{backend:?}");
        store.close().await;
    }
}

async fn memory_store_migrates(url: &str) {
    let store = membrain_store::SqlStore::connect(url, &membrain_store::StoreOptions::default())
        .await
        .expect("the memory store migrates");
    store.close().await;
}

async fn time_series_store_migrates(url: &str) {
    let store = SqlTimeSeriesStore::connect(url, SqlTsOptions::default())
        .await
        .expect("the time-series store migrates");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_migrators_share_one_database_in_either_order() {
    for backend in BACKENDS {
        for memory_first in [true, false] {
            let database = TestDatabase::new(backend).await;
            for _ in 0..2 {
                if memory_first {
                    memory_store_migrates(&database.url).await;
                    time_series_store_migrates(&database.url).await;
                } else {
                    time_series_store_migrates(&database.url).await;
                    memory_store_migrates(&database.url).await;
                }
            }
            let store = store(&database).await;
            let who = tenant("shared");
            let outcome = write_json(
                &store,
                &who,
                &table("transit", "bus_position"),
                &[bus_record(test_origin(), 0, "B1", 1.0)],
            )
            .await
            .expect("a write after both migrations");
            assert_eq!(outcome.records_ingested, 1, "{backend:?}");
            // Each migrator keeps its own book.
            let versions: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {MIGRATIONS_TABLE}"
            )))
            .fetch_one(
                &mut sqlx::AnyConnection::connect(&database.url)
                    .await
                    .expect("connect"),
            )
            .await
            .expect("count migrations");
            // This crate's migrations, none of the memory store's.
            let own = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
                .expect("the migrations")
                .count();
            assert_eq!(versions, own as i64, "{backend:?}");
            store.close().await;
        }
    }
}

/// `ts_tables.record_count`, beside the real count of each table's records.
async fn counts(database: &TestDatabase) -> Vec<(i64, i64)> {
    let mut conn = sqlx::AnyConnection::connect(&database.url)
        .await
        .expect("connect");
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT t.record_count, (SELECT COUNT(*) FROM ts_records r JOIN ts_series s \
         ON s.id = r.series_id WHERE s.table_id = t.id) FROM ts_tables t ORDER BY t.id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("counts");
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_counts_follow_every_change_and_the_migration_fills_them() {
    for backend in BACKENDS {
        let database = TestDatabase::new(backend).await;
        let store = store(&database).await;
        let who = tenant("counter");
        let (buses, trams) = (table("transit", "buses"), table("transit", "trams"));
        let now = Timestamp::now();
        let records = |from: i64, count: i64| -> Vec<Json> {
            (from..from + count)
                .map(|minutes| {
                    bus_record(now.plus_micros(-90 * 60_000_000), minutes * 60, "B1", 1.0)
                })
                .collect()
        };
        write_json(&store, &who, &buses, &records(0, 50))
            .await
            .expect("write");
        // Repeats add nothing; new ones do.
        write_json(&store, &who, &buses, &records(40, 20))
            .await
            .expect("write");
        write_json(&store, &who, &trams, &records(0, 5))
            .await
            .expect("write");
        assert_eq!(
            counts(&database).await,
            vec![(60, 60), (5, 5)],
            "{backend:?}"
        );
        // A shorter retention, expiry and a drop each keep the counts true.
        store
            .set_retention(
                &who,
                &buses,
                membrain_timeseries::Span::parse("1h").expect("span"),
            )
            .await
            .expect("retention");
        let after_retention = counts(&database).await;
        assert_eq!(after_retention[0].0, after_retention[0].1, "{backend:?}");
        assert!(
            after_retention[0].0 < 60,
            "{backend:?}: {after_retention:?}"
        );
        sqlx::query("UPDATE ts_tables SET retention_us = $1")
            .bind(45 * 60_000_000_i64)
            .execute(
                &mut sqlx::AnyConnection::connect(&database.url)
                    .await
                    .expect("connect"),
            )
            .await
            .expect("shorten behind the store's back");
        assert!(store.prune_expired().await.expect("prune") > 0);
        for (kept, real) in counts(&database).await {
            assert_eq!(kept, real, "{backend:?}");
        }
        store.drop_table(&who, &trams).await.expect("drop");
        assert_eq!(counts(&database).await.len(), 1);

        // A database from before the counts: the migration fills them in.
        sqlx::query("UPDATE ts_tables SET record_count = 0")
            .execute(
                &mut sqlx::AnyConnection::connect(&database.url)
                    .await
                    .expect("connect"),
            )
            .await
            .expect("forget the counts");
        let mut conn = sqlx::AnyConnection::connect(&database.url)
            .await
            .expect("connect");
        let migration = match backend {
            common::Backend::Sqlite => {
                include_str!("../migrations/sqlite/0002_record_counts.sql")
            }
            common::Backend::Postgres => {
                include_str!("../migrations/postgres/0002_record_counts.sql")
            }
        };
        let backfill = migration
            .split(';')
            .find(|statement| statement.contains("UPDATE ts_tables"))
            .expect("the backfill statement");
        sqlx::query(AssertSqlSafe(backfill.to_owned()))
            .execute(&mut conn)
            .await
            .expect("backfill");
        for (kept, real) in counts(&database).await {
            assert!(kept > 0, "{backend:?}");
            assert_eq!(kept, real, "{backend:?}");
        }
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_of_one_tenant_never_cross_its_quota() {
    const WRITERS: usize = 6;
    for backend in BACKENDS {
        let database = TestDatabase::new(backend).await;
        // Two stores, as two API tasks would have; each writer its own table.
        let stores = [store(&database).await, store(&database).await];
        let limits = membrain_timeseries::WriteLimits {
            max_points_per_tenant: 250,
            ..membrain_timeseries::WriteLimits::default()
        };
        let who = tenant("crowded");
        let origin = test_origin();
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let (store, limits, who) = (stores[writer % 2].clone(), limits.clone(), who.clone());
            tasks.push(tokio::spawn(async move {
                let own = table("transit", &format!("own_{writer}"));
                let mut written = 0;
                for batch in 0..3 {
                    let records: Vec<Json> = (0..20)
                        .map(|i| bus_record(origin, batch * 20 + i, "B1", 1.0))
                        .collect();
                    match membrain_timeseries::testing::write_json_with(
                        &store, &who, &own, &records, &limits,
                    )
                    .await
                    {
                        Ok(outcome) => {
                            assert_eq!(outcome.records_ingested, 20, "{outcome:?}");
                            written += 20;
                        }
                        Err(membrain_timeseries::TsError::QuotaExceeded(_)) => {}
                        Err(error) => panic!("write: {error}"),
                    }
                }
                written
            }));
        }
        let mut written = 0;
        for task in tasks {
            written += task.await.expect("a writer");
        }
        assert_eq!(
            written, 240,
            "{backend:?}: 12 batches of 20 fit in 250, and no more"
        );
        let stored: i64 = counts(&database).await.iter().map(|(_, real)| real).sum();
        assert_eq!(stored, 240, "{backend:?}");
        for store in &stores {
            store.close().await;
        }
    }
}
