//! The embedded store: the shared behaviour, and what it promises on disk — restarts, torn log
//! tails, checkpoints, retention, and one process per directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use membrain_timeseries::testing::{conformance, table, tenant, write_json};
use membrain_timeseries::{
    AttributeName, DimensionFilter, LatestQuery, MeasureValue, RangeQuery, ReadLimits, Span,
    TimeSeriesStore, Timestamp, TsError,
};
use membrain_ts_embedded::{EmbeddedOptions, EmbeddedStore};
use serde_json::{Value as Json, json};

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        checkpoint_interval: None,
        ..EmbeddedOptions::default()
    }
}

async fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(dir, options()).await.expect("open")
}

fn name(raw: &str) -> AttributeName {
    AttributeName::parse(raw).expect("name")
}

/// `count` records of bus `bus`, one a second ending a minute ago, starting at `from`.
fn bus_records(bus: &str, from: i64, count: i64) -> Vec<Json> {
    let base = Timestamp::now().plus_micros(-3_600_000_000);
    (from..from + count)
        .map(|second| {
            json!({"time": base.plus_micros(second * 1_000_000).to_rfc3339(),
                   "dimensions": {"bus_id": bus, "line_id": "L1"},
                   "measures": {"speed": second as f64 + 0.5, "passengers": second}})
        })
        .collect()
}

async fn row_count(store: &EmbeddedStore) -> u64 {
    store
        .describe_table(&tenant("acme"), &table("transit", "buses"))
        .await
        .expect("describe")
        .row_count
}

async fn write_buses(store: &EmbeddedStore, records: &[Json]) -> usize {
    let outcome = write_json(store, &tenant("acme"), &table("transit", "buses"), records)
        .await
        .expect("write");
    assert!(outcome.rejected_records.is_empty(), "{outcome:?}");
    outcome.records_ingested
}

async fn everything(store: &EmbeddedStore) -> Json {
    {
        let acme = tenant("acme");
        let buses = table("transit", "buses");
        let limits = ReadLimits::default();
        let description = store.describe_table(&acme, &buses).await.expect("describe");
        let latest = store
            .latest(
                &acme,
                &LatestQuery {
                    table: buses.clone(),
                    dimensions: DimensionFilter::default(),
                    measure: None,
                },
                &limits,
            )
            .await
            .expect("latest");
        let range = store
            .range(
                &acme,
                &RangeQuery {
                    table: buses.clone(),
                    // Fixed ends, so that answers compare equal across restarts.
                    start: Timestamp::from_micros(0),
                    end: Timestamp::from_micros(i64::MAX / 2),
                    dimensions: DimensionFilter::default(),
                    measure: None,
                    bin: None,
                    aggregate: None,
                },
                &limits,
            )
            .await
            .expect("range");
        json!({"description": description, "latest": latest, "range": range})
    }
}

#[tokio::test]
async fn conforms_to_the_shared_behaviour() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path()).await;
    conformance(&store).await;
    // And all of it again after a restart from the log, then from a checkpoint.
    let before = store
        .list_tables(&tenant("conf-alice"), None)
        .await
        .expect("list");
    drop(store);
    let store = open(dir.path()).await;
    assert_eq!(
        store
            .list_tables(&tenant("conf-alice"), None)
            .await
            .expect("list"),
        before
    );
    store.close().await.expect("close");
    let store = open(dir.path()).await;
    assert_eq!(
        store
            .list_tables(&tenant("conf-alice"), None)
            .await
            .expect("list"),
        before
    );
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path()).await;
    write_buses(&store, &bus_records("B1", 0, 50)).await;
    write_buses(&store, &bus_records("B2", 0, 50)).await;
    let before = everything(&store).await;
    drop(store);

    let store = open(dir.path()).await;
    assert_eq!(everything(&store).await, before, "replayed from the log");
    store.close().await.expect("close");
    let store = open(dir.path()).await;
    assert_eq!(
        everything(&store).await,
        before,
        "loaded from the checkpoint"
    );
    assert_eq!(row_count(&store).await, 100);
}

fn newest_segment(dir: &Path) -> std::path::PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .filter(|path| std::fs::metadata(path).is_ok_and(|meta| meta.len() > 0))
        .collect();
    segments.sort();
    segments.pop().expect("a log segment with entries")
}

#[tokio::test]
async fn a_torn_or_corrupt_log_tail_keeps_every_complete_batch() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path()).await;
    for batch in 0..3 {
        write_buses(&store, &bus_records("B1", batch * 10, 10)).await;
    }
    drop(store);
    // A crash mid-append: a header promising more bytes than follow.
    let segment = newest_segment(dir.path());
    let mut file = OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("open segment");
    file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9])
        .expect("tear");
    drop(file);

    let store = open(dir.path()).await;
    assert_eq!(row_count(&store).await, 30, "every complete batch is back");
    // Writes after the torn tail land in a new segment and survive the next restart.
    write_buses(&store, &bus_records("B1", 30, 10)).await;
    drop(store);

    // A flipped byte in the last entry: that batch is lost, the ones before it are not.
    let segment = newest_segment(dir.path());
    let mut bytes = std::fs::read(&segment).expect("read segment");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&segment, bytes).expect("corrupt");
    let store = open(dir.path()).await;
    assert_eq!(row_count(&store).await, 30);
}

#[tokio::test]
async fn a_checkpoint_then_more_writes_survive_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path()).await;
    write_buses(&store, &bus_records("B1", 0, 20)).await;
    store.checkpoint().await.expect("checkpoint");
    write_buses(&store, &bus_records("B1", 20, 20)).await;
    write_buses(&store, &bus_records("B2", 0, 5)).await;
    let before = everything(&store).await;
    drop(store);

    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let checkpoints = names
        .iter()
        .filter(|name| name.starts_with("checkpoint-"))
        .count();
    let segments = names.iter().filter(|name| name.starts_with("wal-")).count();
    assert_eq!(
        (checkpoints, segments),
        (1, 1),
        "older segments are deleted: {names:?}"
    );

    let store = open(dir.path()).await;
    assert_eq!(everything(&store).await, before);
    assert_eq!(row_count(&store).await, 45);
}

#[tokio::test]
async fn retention_holds_across_restarts() {
    let dir = tempfile::tempdir().expect("dir");
    let short = EmbeddedOptions {
        default_retention: Span::from_secs(2),
        ..options()
    };
    let store = EmbeddedStore::open(dir.path(), short.clone())
        .await
        .expect("open");
    let acme = tenant("acme");
    let readings = table("plant", "readings");
    let recent = Timestamp::now().plus_micros(-500_000).to_rfc3339();
    write_json(
        &store,
        &acme,
        &readings,
        &[json!({"time": recent, "dimensions": {"sensor": "t1"}, "measures": {"value": 1.0}})],
    )
    .await
    .expect("write");
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;

    let store = EmbeddedStore::open(dir.path(), short.clone())
        .await
        .expect("reopen");
    let description = store
        .describe_table(&acme, &readings)
        .await
        .expect("describe");
    assert_eq!(description.row_count, 0, "past retention after the restart");
    let latest = store
        .latest(
            &acme,
            &LatestQuery {
                table: readings.clone(),
                dimensions: DimensionFilter::default(),
                measure: None,
            },
            &ReadLimits::default(),
        )
        .await
        .expect("latest");
    assert!(latest.series.is_empty(), "{latest:?}");
    store
        .close()
        .await
        .expect("a checkpoint drops the old record");
    let store = EmbeddedStore::open(dir.path(), short)
        .await
        .expect("reopen");
    assert_eq!(
        store
            .describe_table(&acme, &readings)
            .await
            .expect("describe")
            .row_count,
        0
    );
    drop(store);

    let store = open(dir.path()).await;

    // A retention set by hand, replayed from the log.
    write_buses(&store, &bus_records("B1", 0, 10)).await;
    let buses = table("transit", "buses");
    store
        .set_retention(&acme, &buses, Span::from_secs(3_600 - 5))
        .await
        .expect("retention");
    let kept = row_count(&store).await;
    assert!(kept < 10, "the oldest records are gone: {kept}");
    drop(store);
    let store = open(dir.path()).await;
    assert_eq!(row_count(&store).await, kept);
    let description = store.describe_table(&acme, &buses).await.expect("describe");
    assert_eq!(description.retention, "3595s");
    store.drop_table(&acme, &buses).await.expect("drop");
    drop(store);
    let store = open(dir.path()).await;
    let gone = store
        .describe_table(&acme, &buses)
        .await
        .expect_err("dropped");
    assert!(matches!(gone, TsError::NotFound(_)), "{gone:?}");
}

#[tokio::test]
async fn out_of_order_and_repeated_writes() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path()).await;
    let records = bus_records("B1", 0, 10);
    write_buses(&store, &[records[9].clone(), records[3].clone()]).await;
    write_buses(
        &store,
        &[records[5].clone(), records[0].clone(), records[7].clone()],
    )
    .await;
    // A retry of the same records is accepted and changes nothing.
    assert_eq!(write_buses(&store, &records[..]).await, 10);
    assert_eq!(row_count(&store).await, 10);
    let mut changed = records[4].clone();
    changed["measures"]["speed"] = json!(1.25);
    let outcome = write_json(
        &store,
        &tenant("acme"),
        &table("transit", "buses"),
        &[changed],
    )
    .await
    .expect("write");
    assert_eq!(outcome.records_ingested, 0);
    assert!(
        outcome.rejected_records[0].reason.contains("already"),
        "{outcome:?}"
    );
    // Fewer measures than stored is a different record too.
    let mut fewer = records[4].clone();
    fewer["measures"] = json!({"speed": 4.5});
    let outcome = write_json(
        &store,
        &tenant("acme"),
        &table("transit", "buses"),
        &[fewer],
    )
    .await
    .expect("write");
    assert_eq!(outcome.rejected_records.len(), 1, "{outcome:?}");

    let check = |store: EmbeddedStore| async move {
        let range = everything(&store).await;
        let times: Vec<&str> = range["range"]["series"][0]["points"]
            .as_array()
            .expect("points")
            .iter()
            .map(|point| point["time"].as_str().expect("time"))
            .collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times.len(), 10);
        assert_eq!(times, sorted, "in time order");
        let latest = &range["latest"]["series"][0]["points"][0];
        assert_eq!(latest["measures"]["passengers"], json!(9));
    };
    check(store).await;
    check(open(dir.path()).await).await;
}

#[tokio::test]
async fn a_second_open_of_the_directory_fails_clearly() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path()).await;
    let error = EmbeddedStore::open(dir.path(), options())
        .await
        .expect_err("the directory is taken");
    let message = error.to_string();
    assert!(
        message.contains("another membrain process is using")
            && message.contains("--data-dir")
            && message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    drop(store);
    open(dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_all_land() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(open(dir.path()).await);
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            // Half the writers share a table, half have their own.
            let target = if writer % 2 == 0 {
                table("transit", "buses")
            } else {
                table("transit", &format!("own_{writer}"))
            };
            for batch in 0..10 {
                let records = bus_records(&format!("W{writer}"), batch * 5, 5);
                let outcome = write_json(store.as_ref(), &tenant("acme"), &target, &records)
                    .await
                    .expect("write");
                assert_eq!(outcome.records_ingested, 5, "{outcome:?}");
            }
        }));
    }
    // A checkpoint in the middle of it all loses nothing.
    store.checkpoint().await.expect("checkpoint");
    for task in tasks {
        task.await.expect("writer");
    }
    assert_eq!(row_count(&store).await, 4 * 50);
    let store = Arc::into_inner(store).expect("the only handle");
    drop(store);
    let store = open(dir.path()).await;
    assert_eq!(row_count(&store).await, 4 * 50);
    let tables = store
        .list_tables(&tenant("acme"), None)
        .await
        .expect("list");
    assert_eq!(tables.len(), 5);
    let own = store
        .latest(
            &tenant("acme"),
            &LatestQuery {
                table: table("transit", "own_1"),
                dimensions: DimensionFilter::default(),
                measure: Some(name("passengers")),
            },
            &ReadLimits::default(),
        )
        .await
        .expect("latest");
    assert_eq!(
        own.series[0].points[0].measures,
        vec![(name("passengers"), MeasureValue::Bigint(49))]
    );
}

#[tokio::test]
async fn damage_before_the_end_of_a_segment_refuses_to_open_and_says_what_to_do() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path()).await;
    for batch in 0..3 {
        write_buses(&store, &bus_records("B1", batch * 10, 10)).await;
    }
    drop(store);
    let segment = newest_segment(dir.path());
    let mut bytes = std::fs::read(&segment).expect("read segment");
    // The second entry starts after the first: its length, its checksum and its payload.
    let first_len = u32::from_le_bytes(bytes[..4].try_into().expect("a header")) as usize;
    let second = 8 + first_len;
    bytes[second + 20] ^= 0x10;
    std::fs::write(&segment, &bytes).expect("damage");

    let error = EmbeddedStore::open(dir.path(), options())
        .await
        .expect_err("damage followed by valid entries");
    let message = error.to_string();
    for needle in [
        segment.display().to_string(),
        format!("damaged at byte {second}"),
        "checksum".to_owned(),
        "backup".to_owned(),
        format!("truncate -s {second}"),
        "keeps the 1 entries before".to_owned(),
    ] {
        assert!(message.contains(&needle), "{needle}: {message}");
    }
    // Following the advice keeps the entries before the damage.
    let file = OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open segment");
    file.set_len(second as u64).expect("truncate");
    drop(file);
    let store = open(dir.path()).await;
    assert_eq!(row_count(&store).await, 10);
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("dir");
    let dir = parent.path().join("new").join("timeseries");
    let store = open(&dir).await;
    write_buses(&store, &bus_records("B1", 0, 3)).await;
    store.checkpoint().await.expect("checkpoint");
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&dir), 0o700, "the data directory");
    assert_eq!(
        mode(&parent.path().join("new")),
        0o700,
        "a parent it created"
    );
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read dir")
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn quota_usage_is_counted_again_after_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let limits = membrain_timeseries::WriteLimits {
        max_points_per_tenant: 25,
        max_tables_per_tenant: 1,
        ..membrain_timeseries::WriteLimits::default()
    };
    async fn write(
        store: &EmbeddedStore,
        which: &str,
        records: Vec<Json>,
        limits: &membrain_timeseries::WriteLimits,
    ) -> Result<membrain_timeseries::WriteOutcome, TsError> {
        membrain_timeseries::testing::write_json_with(
            store,
            &tenant("acme"),
            &table("transit", which),
            &records,
            limits,
        )
        .await
    }
    let store = open(dir.path()).await;
    write(&store, "buses", bus_records("B1", 0, 20), &limits)
        .await
        .expect("within");
    store.checkpoint().await.expect("checkpoint");
    write(&store, "buses", bus_records("B1", 20, 5), &limits)
        .await
        .expect("within");
    drop(store);
    // From a checkpoint plus the log: 25 records and one table.
    let store = open(dir.path()).await;
    let full = write(&store, "buses", bus_records("B1", 30, 1), &limits)
        .await
        .expect_err("full");
    assert!(matches!(full, TsError::QuotaExceeded(_)), "{full:?}");
    let second = write(&store, "trams", bus_records("T1", 0, 1), &limits)
        .await
        .expect_err("one table only");
    assert!(
        second.to_string().contains("already has 1 tables"),
        "{second}"
    );
}

/// What a [`fuzz_log_replay`] case does to the log after the writes.
#[derive(Debug, Clone)]
enum Damage {
    /// Cut the file at a point (a crash mid-append, or a lost tail).
    Truncate(proptest::sample::Index),
    /// XOR bytes at distinct points with non-zero masks.
    Flip(Vec<(proptest::sample::Index, u8)>),
    /// Garbage after the last entry.
    Append(Vec<u8>),
}

fn damage() -> impl proptest::strategy::Strategy<Value = Damage> {
    use proptest::prelude::*;
    prop_oneof![
        any::<proptest::sample::Index>().prop_map(Damage::Truncate),
        proptest::collection::vec((any::<proptest::sample::Index>(), 1u8..=255), 1..4)
            .prop_map(Damage::Flip),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(Damage::Append),
    ]
}

/// The start of each entry in a segment, and its end.
fn entry_bounds(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut bounds = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        bounds.push((at, at + 8 + len));
        at += 8 + len;
    }
    bounds
}

/// Every record of both fuzz tables, as (table, time, speed).
async fn stored_records(store: &EmbeddedStore) -> std::collections::BTreeSet<(String, i64, i64)> {
    let mut found = std::collections::BTreeSet::new();
    for which in ["left", "right"] {
        let scan = membrain_timeseries::Scan {
            table: table("fuzz", which),
            start: None,
            end: None,
            dimensions: DimensionFilter::default(),
            measures: None,
        };
        match store
            .scan(&tenant("acme"), &scan, &ReadLimits::default())
            .await
        {
            Ok(series) => {
                for point in series.iter().flat_map(|entry| &entry.points) {
                    let passengers = match point.measures.first() {
                        Some((_, MeasureValue::Bigint(value))) => *value,
                        other => panic!("unexpected measures {other:?}"),
                    };
                    found.insert((which.to_owned(), point.time.as_micros(), passengers));
                }
            }
            Err(TsError::NotFound(_)) => {}
            Err(error) => panic!("scan: {error}"),
        }
    }
    found
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|raw| raw.parse().ok()).unwrap_or(32),
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Acknowledged writes, then a damaged log: a reopen either holds exactly a prefix of the
    /// writes (only the tail was damaged) or refuses with the error that names the damage.
    #[test]
    fn fuzz_log_replay(sizes in proptest::collection::vec(1usize..6, 1..6), damage in damage()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let dir = tempfile::tempdir().expect("dir");
            let base = Timestamp::now().plus_micros(-3_600_000_000);
            let mut batches = Vec::new();
            let store = open(dir.path()).await;
            for (index, size) in sizes.iter().enumerate() {
                let which = if index % 2 == 0 { "left" } else { "right" };
                let batch: Vec<(String, i64, i64)> = (0..*size)
                    .map(|i| {
                        let time = base.plus_micros(((index * 10 + i) as i64) * 1_000_000);
                        (which.to_owned(), time.as_micros(), (index * 10 + i) as i64)
                    })
                    .collect();
                let records: Vec<Json> = batch
                    .iter()
                    .map(|(_, time, passengers)| json!({
                        "time": Timestamp::from_micros(*time).to_rfc3339(),
                        "dimensions": {"bus": "B1"},
                        "measures": {"passengers": passengers},
                    }))
                    .collect();
                let outcome = write_json(&store, &tenant("acme"), &table("fuzz", which), &records)
                    .await
                    .expect("write");
                assert_eq!(outcome.records_ingested, *size);
                batches.push(batch);
            }
            drop(store);

            let segment = newest_segment(dir.path());
            let mut bytes = std::fs::read(&segment).expect("read");
            let bounds = entry_bounds(&bytes);
            assert_eq!(bounds.len(), batches.len(), "one entry per write");
            // How many writes a reopen must hold, or `None` when it must refuse: damage with an
            // intact entry after it.
            let expected: Option<usize> = match &damage {
                Damage::Truncate(at) => {
                    let cut = at.index(bytes.len() + 1);
                    bytes.truncate(cut);
                    Some(bounds.iter().filter(|(_, end)| *end <= cut).count())
                }
                Damage::Flip(flips) => {
                    let mut points = std::collections::BTreeMap::new();
                    for (at, mask) in flips {
                        points.insert(at.index(bytes.len()), *mask);
                    }
                    for (at, mask) in &points {
                        bytes[*at] ^= mask;
                    }
                    let damaged: Vec<bool> = bounds
                        .iter()
                        .map(|(start, end)| points.keys().any(|at| (*start..*end).contains(at)))
                        .collect();
                    let first = damaged.iter().position(|hit| *hit).expect("a flip hits an entry");
                    damaged[first..].iter().all(|hit| *hit).then_some(first)
                }
                Damage::Append(garbage) => {
                    bytes.extend_from_slice(garbage);
                    Some(batches.len())
                }
            };
            std::fs::write(&segment, &bytes).expect("damage");

            match EmbeddedStore::open(dir.path(), options()).await {
                Ok(store) => {
                    let found = stored_records(&store).await;
                    let prefix = (0..=batches.len()).find(|&kept| {
                        let kept: std::collections::BTreeSet<_> =
                            batches[..kept].iter().flatten().cloned().collect();
                        kept == found
                    });
                    assert!(
                        expected.is_some(),
                        "damage before the tail was skipped: {damage:?}"
                    );
                    assert_eq!(
                        prefix, expected,
                        "not the expected prefix of the writes: {found:?} after {damage:?}"
                    );
                }
                Err(error) => {
                    let message = error.to_string();
                    assert!(
                        expected.is_none(),
                        "a damaged tail must not stop the store opening: {message}"
                    );
                    assert!(
                        message.contains("is damaged at byte")
                            && message.contains(&segment.display().to_string()),
                        "{message}"
                    );
                }
            }
        });
    }
}
