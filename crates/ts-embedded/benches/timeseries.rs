//! The standard time-series workload on the embedded store: 200 buses × 10,000 records of 5
//! measures (10 M points), ingest rate, latest and one-day binned aggregates, and reopen time.
//!
//! `cargo bench -p membrain-ts-embedded --bench timeseries [-- --series N --records N --runs N]`
//! (`--dir PATH` keeps the data somewhere other than a temporary directory).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use membrain_memory::TenantId;
use membrain_timeseries::{
    Aggregate, AttributeName, BatchItem, Bin, DimensionFilter, Dimensions, LatestQuery,
    MeasureValue, RangeQuery, ReadLimits, Record, TableRef, TimeSeriesStore, Timestamp,
    WriteLimits,
};
use membrain_ts_embedded::{EmbeddedOptions, EmbeddedStore};

struct Args {
    series: usize,
    records: usize,
    runs: usize,
    dir: Option<PathBuf>,
}

fn args() -> Args {
    let mut parsed = Args {
        series: 200,
        records: 10_000,
        runs: 200,
        dir: None,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().unwrap_or_default();
        match flag.as_str() {
            "--series" => parsed.series = value().parse().unwrap_or(parsed.series),
            "--records" => parsed.records = value().parse().unwrap_or(parsed.records),
            "--runs" => parsed.runs = value().parse().unwrap_or(parsed.runs),
            "--dir" => parsed.dir = Some(PathBuf::from(value())),
            _ => {} // cargo bench passes --bench
        }
    }
    parsed
}

fn name(raw: &str) -> AttributeName {
    AttributeName::parse(raw).expect("a valid name")
}

/// Batches of 1,000 records, oldest first, every series interleaved as a fleet reports.
fn batches(series: usize, records: usize, now: Timestamp) -> Vec<Vec<BatchItem>> {
    let dimensions: Vec<Dimensions> = (0..series)
        .map(|bus| {
            Dimensions::new([
                (name("bus_id"), format!("B{bus:03}")),
                (name("line_id"), format!("L{:02}", bus % 20)),
            ])
        })
        .collect();
    let names = [
        name("latitude"),
        name("longitude"),
        name("next_stop_id"),
        name("passenger_count"),
        name("speed"),
    ];
    let mut all = Vec::with_capacity(series * records);
    for step in 0..records {
        let time = now.plus_micros(-((records - 1 - step) as i64) * 10_000_000);
        for (bus, dimensions) in dimensions.iter().enumerate() {
            let wobble = ((step + bus) % 100) as f64;
            let measures = vec![
                (names[0].clone(), MeasureValue::Double(52.0 + wobble / 1e4)),
                (names[1].clone(), MeasureValue::Double(4.0 + wobble / 1e4)),
                (
                    names[2].clone(),
                    MeasureValue::Varchar(format!("S{:03}", (step / 30 + bus) % 500)),
                ),
                (
                    names[3].clone(),
                    MeasureValue::Bigint(((step * 7 + bus) % 80) as i64),
                ),
                (names[4].clone(), MeasureValue::Double(wobble / 2.0)),
            ];
            all.push(Record {
                time,
                dimensions: dimensions.clone(),
                measures,
            });
        }
    }
    let mut batches = Vec::new();
    let mut items = Vec::with_capacity(1_000);
    for record in all {
        items.push(BatchItem {
            index: items.len(),
            record,
        });
        if items.len() == 1_000 {
            batches.push(std::mem::replace(&mut items, Vec::with_capacity(1_000)));
        }
    }
    if !items.is_empty() {
        batches.push(items);
    }
    batches
}

fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples[index]
}

fn millis(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

async fn timed<F, Fut>(runs: usize, mut call: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut samples = Vec::with_capacity(runs);
    let mut answered = 0;
    for _ in 0..runs {
        let started = Instant::now();
        answered += call().await;
        samples.push(started.elapsed());
    }
    assert!(answered > 0, "the queries answered nothing");
    (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
    )
}

#[tokio::main]
async fn main() {
    let args = args();
    let temporary = tempfile::tempdir().expect("a temporary directory");
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_owned());
    let options = EmbeddedOptions {
        checkpoint_interval: None,
        ..EmbeddedOptions::default()
    };
    let tenant = TenantId::parse("bench").expect("tenant");
    let table = TableRef::parse("transit", "bus_position").expect("table");
    let now = Timestamp::now();
    let batches = batches(args.series, args.records, now);
    let points = args.series * args.records * 5;
    let mut rows: Vec<(String, String, String)> = Vec::new();

    let store = EmbeddedStore::open(&dir, options.clone())
        .await
        .expect("open");
    let limits = WriteLimits::default();
    let started = Instant::now();
    for batch in batches {
        let outcome = store
            .write(&tenant, &table, batch, &limits)
            .await
            .expect("write");
        assert!(outcome.rejected_records.is_empty(), "{outcome:?}");
    }
    let elapsed = started.elapsed();
    rows.push((
        format!("ingest {points} points (batches of 1,000 records)"),
        format!("{:.0} points/s", points as f64 / elapsed.as_secs_f64()),
        format!("{:.2} s total", elapsed.as_secs_f64()),
    ));

    let read_limits = ReadLimits::default();
    let one_bus = DimensionFilter::new([(name("bus_id"), "B003".to_owned())]);
    let one_line = DimensionFilter::new([(name("line_id"), "L03".to_owned())]);
    let latest = |dimensions: DimensionFilter| LatestQuery {
        table: table.clone(),
        dimensions,
        measure: None,
    };
    let day = |dimensions: DimensionFilter| RangeQuery {
        table: table.clone(),
        start: now.plus_micros(-86_400_000_000),
        end: now.plus_micros(1),
        dimensions,
        measure: Some(name("speed")),
        bin: Some(Bin::parse("1m").expect("bin")),
        aggregate: Some(Aggregate::Avg),
    };
    let queries = [
        (
            "latest, one bus",
            QueryKind::Latest(latest(one_bus.clone())),
        ),
        (
            "latest, all series",
            QueryKind::Latest(latest(DimensionFilter::default())),
        ),
        (
            "1-day 1m avg(speed), one bus",
            QueryKind::Range(day(one_bus)),
        ),
        (
            "1-day 1m avg(speed), line L03",
            QueryKind::Range(day(one_line)),
        ),
    ];
    for (label, query) in &queries {
        let (p50, p99) = timed(args.runs, || {
            let query = query.clone();
            let (store, tenant, limits) = (&store, &tenant, &read_limits);
            async move {
                match query {
                    QueryKind::Latest(query) => store
                        .latest(tenant, &query, limits)
                        .await
                        .expect("latest")
                        .series
                        .len(),
                    QueryKind::Range(query) => store
                        .range(tenant, &query, limits)
                        .await
                        .expect("range")
                        .series
                        .len(),
                }
            }
        })
        .await;
        rows.push((
            label.to_string(),
            format!("p50 {}", millis(p50)),
            format!("p99 {}", millis(p99)),
        ));
    }
    drop(store);

    let started = Instant::now();
    let store = EmbeddedStore::open(&dir, options.clone())
        .await
        .expect("reopen");
    rows.push((
        "reopen, replaying the whole log".into(),
        millis(started.elapsed()),
        String::new(),
    ));
    let started = Instant::now();
    store.close().await.expect("close");
    rows.push((
        "close (checkpoint)".into(),
        millis(started.elapsed()),
        String::new(),
    ));
    let started = Instant::now();
    let store = EmbeddedStore::open(&dir, options).await.expect("reopen");
    let reopened = started.elapsed();
    let description = store
        .describe_table(&tenant, &table)
        .await
        .expect("describe");
    assert_eq!(description.row_count as usize, args.series * args.records);
    rows.push((
        "reopen from the checkpoint".into(),
        millis(reopened),
        String::new(),
    ));

    println!(
        "\nembedded store, {} series × {} records × 5 measures",
        args.series, args.records
    );
    let width = rows.iter().map(|row| row.0.len()).max().unwrap_or(0);
    for (label, first, second) in rows {
        println!("  {label:<width$}  {first:>18}  {second}");
    }
}

#[derive(Clone)]
enum QueryKind {
    Latest(LatestQuery),
    Range(RangeQuery),
}
