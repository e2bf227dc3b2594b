//! The standard time-series workload, on SQLite (a temporary file) or PostgreSQL (a fresh
//! database on the server given, dropped afterwards):
//!
//! `cargo bench -p membrain-ts-sql --bench timeseries -- [--postgres URL] [--series N] [--records N]`
//!
//! Table transit.bus_position, `--series` buses (B000…, line L00…L19 = bus % 20), `--records`
//! records in all, 10 s apart per bus and ending now, 5 measures each (latitude, longitude,
//! speed: double; passenger_count: bigint; next_stop_id: varchar), written 1,000 records a
//! batch. Prints points/s, latest p50/p99 for one bus and for all series, and the one-day
//! 1-minute average speed of one bus p50/p99.

use std::time::{Duration, Instant};

use membrain_memory::TenantId;
use membrain_timeseries::{
    Aggregate, AttributeName, BatchItem, Bin, DimensionFilter, Dimensions, LatestQuery,
    MeasureValue, RangeQuery, ReadLimits, Record, TableRef, TimeSeriesStore, Timestamp,
    WriteLimits,
};
use membrain_ts_sql::{SqlTimeSeriesStore, SqlTsOptions};
use sqlx::{AssertSqlSafe, Connection};

const BATCH: usize = 1_000;
const MEASURES_PER_RECORD: usize = 5;

struct Args {
    postgres: Option<String>,
    series: usize,
    records: usize,
}

fn args() -> Args {
    let mut args = Args {
        postgres: None,
        series: 200,
        records: 200_000,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--postgres" => args.postgres = Some(value()),
            "--series" => args.series = value().parse().expect("--series N"),
            "--records" => args.records = value().parse().expect("--records N"),
            // cargo bench passes --bench; anything else is a mistake worth saying.
            "--bench" => {}
            other => {
                panic!("unknown argument {other}: use --postgres URL, --series N, --records N")
            }
        }
    }
    args
}

fn name(raw: &str) -> AttributeName {
    AttributeName::parse(raw).expect("a valid name")
}

/// A fresh PostgreSQL database on the server of `admin`, and its URL.
async fn fresh_postgres(admin: &str) -> (String, String) {
    let database = format!("membrain_ts_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect to PostgreSQL");
    // The name is generated above, never caller text.
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut conn)
        .await
        .expect("create the bench database");
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    (format!("{base}/{database}"), database)
}

async fn drop_postgres(admin: &str, database: &str) {
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .expect("drop the bench database");
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:.2} ms, p99 {:.2} ms ({} runs)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples.len()
    )
}

async fn time_runs<F, Fut>(runs: usize, mut run: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        run().await;
        samples.push(started.elapsed());
    }
    samples
}

async fn workload(store: &SqlTimeSeriesStore, args: &Args) {
    let tenant = TenantId::parse("bench").expect("tenant");
    let table = TableRef::parse("transit", "bus_position").expect("table");
    let per_series = args.records.div_ceil(args.series);
    let now = Timestamp::now();
    let dimensions: Vec<Dimensions> = (0..args.series)
        .map(|bus| {
            Dimensions::new([
                (name("bus_id"), format!("B{bus:03}")),
                (name("line_id"), format!("L{:02}", bus % 20)),
            ])
        })
        .collect();
    // Oldest first, every bus at each time: the order a fleet reports in.
    let records = (0..per_series).rev().flat_map(|step| {
        let time = now.plus_micros(-(step as i64) * 10_000_000);
        dimensions.iter().enumerate().map(move |(bus, dimensions)| {
            let phase = (step + bus) as f64;
            Record {
                time,
                dimensions: dimensions.clone(),
                measures: vec![
                    (
                        name("latitude"),
                        MeasureValue::Double(40.0 + phase.sin() / 100.0),
                    ),
                    (
                        name("longitude"),
                        MeasureValue::Double(-3.7 + phase.cos() / 100.0),
                    ),
                    (
                        name("next_stop_id"),
                        MeasureValue::Varchar(format!("S{:03}", (step / 30) % 500)),
                    ),
                    (
                        name("passenger_count"),
                        MeasureValue::Bigint(((step * 7 + bus) % 80) as i64),
                    ),
                    (
                        name("speed"),
                        MeasureValue::Double(((step * 13 + bus) % 600) as f64 / 10.0),
                    ),
                ],
            }
        })
    });
    let limits = WriteLimits::default();
    let mut written = 0;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for record in records.take(args.records) {
        batch.push(BatchItem {
            index: batch.len(),
            record,
        });
        if batch.len() == BATCH {
            written += write(store, &tenant, &table, std::mem::take(&mut batch), &limits).await;
        }
    }
    if !batch.is_empty() {
        written += write(store, &tenant, &table, batch, &limits).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let points = written * MEASURES_PER_RECORD;
    println!(
        "write: {written} records = {points} points in {elapsed:.1} s: {:.0} points/s ({:.0} records/s)",
        points as f64 / elapsed,
        written as f64 / elapsed
    );

    let read_limits = ReadLimits::default();
    let one_bus = DimensionFilter::new([(name("bus_id"), "B000".to_owned())]);
    let latest = |dimensions: DimensionFilter| LatestQuery {
        table: table.clone(),
        dimensions,
        measure: None,
    };
    let (one, all) = (latest(one_bus.clone()), latest(DimensionFilter::default()));
    let samples = time_runs(200, || async {
        let answer = store
            .latest(&tenant, &one, &read_limits)
            .await
            .expect("latest");
        assert_eq!(answer.series.len(), 1);
    })
    .await;
    println!("latest, one bus: {}", percentiles(samples));
    let samples = time_runs(100, || async {
        let answer = store
            .latest(&tenant, &all, &read_limits)
            .await
            .expect("latest");
        assert_eq!(answer.series.len(), args.series);
    })
    .await;
    println!(
        "latest, all {} series: {}",
        args.series,
        percentiles(samples)
    );

    let day = RangeQuery {
        table: table.clone(),
        start: now.plus_micros(-86_400_000_000),
        end: now.plus_micros(1),
        dimensions: one_bus,
        measure: Some(name("speed")),
        bin: Some(Bin::parse("1m").expect("bin")),
        aggregate: Some(Aggregate::Avg),
    };
    let samples = time_runs(50, || async {
        let answer = store
            .range(&tenant, &day, &read_limits)
            .await
            .expect("range");
        assert!(!answer.series[0].points.is_empty());
    })
    .await;
    let covered = (per_series * 10).min(86_400) / 60;
    println!(
        "one-day 1-minute avg speed, one bus (~{covered} buckets): {}",
        percentiles(samples)
    );
}

async fn write(
    store: &SqlTimeSeriesStore,
    tenant: &TenantId,
    table: &TableRef,
    batch: Vec<BatchItem>,
    limits: &WriteLimits,
) -> usize {
    let outcome = store
        .write(tenant, table, batch, limits)
        .await
        .expect("write");
    assert!(
        outcome.rejected_records.is_empty(),
        "{:?}",
        outcome.rejected_records.first()
    );
    outcome.records_ingested
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        match &args.postgres {
            Some(admin) => {
                let (url, database) = fresh_postgres(admin).await;
                println!(
                    "PostgreSQL (fresh database {database}), {} series, {} records",
                    args.series, args.records
                );
                let store = SqlTimeSeriesStore::connect(&url, SqlTsOptions::default())
                    .await
                    .expect("connect");
                workload(&store, &args).await;
                store.close().await;
                drop_postgres(admin, &database).await;
            }
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                println!(
                    "SQLite ({url}), {} series, {} records",
                    args.series, args.records
                );
                let store = SqlTimeSeriesStore::connect(&url, SqlTsOptions::default())
                    .await
                    .expect("connect");
                workload(&store, &args).await;
                store.close().await;
            }
        }
    });
}
