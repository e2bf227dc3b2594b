//! The service's promises about reads, against a store whose reads wait until the test lets
//! them go: a tenant holds at most its share of the read slots, the queue is bounded (busy
//! past it), every read ends by its deadline, and `ts_query` plans without counting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use membrain_memory::TenantId;
use membrain_timeseries::service::LatestBody;
use membrain_timeseries::testing::{table, tenant};
use membrain_timeseries::{
    AttributeName, BatchItem, DatabaseName, Dimensions, LatestQuery, LatestResult, MeasureType,
    MeasureValue, Point, RangeQuery, RangeResult, ReadLimits, Scan, SeriesPoints, Span,
    TableDescription, TableMeta, TableRef, TableSummary, TimeSeriesStore, Timestamp, TsError,
    WriteLimits, WriteOutcome,
};
use membrain_ts_service::{ReadSettings, TimeSeriesService};

/// A store whose `list_tables` waits for a permit the test hands out, and whose `scan` answers
/// many records at once.
struct HeldStore {
    /// Tenants whose reads have started, in order.
    entered: Mutex<Vec<String>>,
    release: tokio::sync::Semaphore,
    scan_rows: usize,
    /// `ReadLimits::low_priority` of each scan, in order.
    scan_priorities: Mutex<Vec<bool>>,
}

impl Default for HeldStore {
    fn default() -> Self {
        Self {
            entered: Mutex::new(Vec::new()),
            release: tokio::sync::Semaphore::new(0),
            scan_rows: 0,
            scan_priorities: Mutex::new(Vec::new()),
        }
    }
}

impl HeldStore {
    fn entered(&self) -> Vec<String> {
        self.entered.lock().expect("not poisoned").clone()
    }

    fn meta(table: &TableRef) -> TableMeta {
        let mut meta = TableMeta::new(table.clone(), Span::from_secs(86_400), Timestamp::now());
        meta.schema.dimensions.insert(name("k"));
        meta.schema.measures.insert(name("x"), MeasureType::Bigint);
        meta
    }
}

fn name(raw: &str) -> AttributeName {
    AttributeName::parse(raw).expect("a name")
}

#[async_trait::async_trait]
impl TimeSeriesStore for HeldStore {
    fn describe(&self) -> String {
        "a store whose reads wait for the test".into()
    }

    async fn list_tables(
        &self,
        tenant: &TenantId,
        _: Option<&DatabaseName>,
    ) -> Result<Vec<TableSummary>, TsError> {
        self.entered
            .lock()
            .expect("not poisoned")
            .push(tenant.as_str().to_owned());
        self.release
            .acquire()
            .await
            .map_err(|_| TsError::Internal("closed".into()))?
            .forget();
        Ok(Vec::new())
    }

    async fn describe_table(
        &self,
        _: &TenantId,
        _: &TableRef,
    ) -> Result<TableDescription, TsError> {
        Err(TsError::Internal(
            "ts_query must not count (describe_table)".into(),
        ))
    }

    async fn table_meta(&self, _: &TenantId, table: &TableRef) -> Result<TableMeta, TsError> {
        Ok(Self::meta(table))
    }

    async fn write(
        &self,
        _: &TenantId,
        _: &TableRef,
        _: Vec<BatchItem>,
        _: &WriteLimits,
    ) -> Result<WriteOutcome, TsError> {
        Err(TsError::Internal("not used".into()))
    }

    async fn latest(
        &self,
        _: &TenantId,
        _: &LatestQuery,
        _: &ReadLimits,
    ) -> Result<LatestResult, TsError> {
        // Never answers: only the deadline ends this read.
        std::future::pending().await
    }

    async fn range(
        &self,
        _: &TenantId,
        _: &RangeQuery,
        _: &ReadLimits,
    ) -> Result<RangeResult, TsError> {
        Err(TsError::Internal("not used".into()))
    }

    async fn scan(
        &self,
        _: &TenantId,
        _: &Scan,
        limits: &ReadLimits,
    ) -> Result<Vec<SeriesPoints>, TsError> {
        assert!(
            limits.deadline.instant().is_some(),
            "the service gives every read a deadline"
        );
        self.scan_priorities
            .lock()
            .expect("not poisoned")
            .push(limits.low_priority);
        let points = (0..self.scan_rows)
            .map(|i| Point {
                time: Timestamp::from_micros(i as i64),
                measures: vec![(name("x"), MeasureValue::Bigint(i as i64))],
            })
            .collect();
        Ok(vec![SeriesPoints {
            dimensions: Dimensions::new([(name("k"), "v".to_owned())]),
            points,
        }])
    }

    async fn set_retention(
        &self,
        _: &TenantId,
        _: &TableRef,
        _: Span,
    ) -> Result<TableDescription, TsError> {
        Err(TsError::Internal("not used".into()))
    }

    async fn drop_table(&self, _: &TenantId, _: &TableRef) -> Result<(), TsError> {
        Err(TsError::Internal("not used".into()))
    }
}

fn service(store: Arc<HeldStore>, settings: ReadSettings) -> TimeSeriesService {
    TimeSeriesService::new(store, WriteLimits::default(), ReadLimits::default())
        .with_read_settings(settings)
}

/// Waits until `ready` holds; a minute without it is a failure, not a hang.
async fn until(mut ready: impl FnMut() -> bool) {
    for _ in 0..60_000 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the awaited state never came");
}

fn list(
    service: &TimeSeriesService,
    who: &str,
) -> tokio::task::JoinHandle<Result<membrain_timeseries::service::TablesOutput, TsError>> {
    let (service, who) = (service.clone(), tenant(who));
    tokio::spawn(async move { service.list_tables(&who, None).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_cannot_take_every_read_slot() {
    let store = Arc::new(HeldStore::default());
    let service = service(
        Arc::clone(&store),
        ReadSettings {
            max_concurrent_reads: 2,
            max_queued_reads: 8,
            read_deadline: Duration::from_secs(600),
        },
    );
    // Alice sends two slow reads: her share is one slot, so the second waits.
    let alice = [list(&service, "alice"), list(&service, "alice")];
    until(|| store.entered() == ["alice"] && service_in_flight(&service) == 2).await;
    // Bob still finds the other slot.
    let bob = list(&service, "bob");
    until(|| store.entered().len() == 2).await;
    assert_eq!(
        store.entered(),
        ["alice", "bob"],
        "bob's read runs while alice's second waits for her own slot"
    );
    store.release.add_permits(3);
    for read in alice.into_iter().chain([bob]) {
        read.await.expect("a task").expect("a read");
    }
    assert_eq!(store.entered(), ["alice", "bob", "alice"]);
    assert_eq!(service_in_flight(&service), 0, "every slot given back");
}

fn service_in_flight(service: &TimeSeriesService) -> usize {
    service.reads_in_flight()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_queue_a_read_is_answered_busy_at_once() {
    let store = Arc::new(HeldStore::default());
    let service = service(
        Arc::clone(&store),
        ReadSettings {
            max_concurrent_reads: 2,
            max_queued_reads: 2,
            read_deadline: Duration::from_secs(600),
        },
    );
    // Alice: one running, one waiting — her share of the queue (half of 2).
    let alice = [list(&service, "alice"), list(&service, "alice")];
    until(|| service_in_flight(&service) == 2).await;
    let refused = service
        .list_tables(&tenant("alice"), None)
        .await
        .expect_err("alice's share of the queue is full");
    assert!(
        matches!(&refused, TsError::Busy(message) if message.contains("your tenant")),
        "{refused:?}"
    );
    assert_eq!(refused.code(), "busy");
    // Bob: one running (the second slot), one waiting: the queue is full.
    let bob = [list(&service, "bob"), list(&service, "bob")];
    until(|| service_in_flight(&service) == 4).await;
    let refused = service
        .list_tables(&tenant("carol"), None)
        .await
        .expect_err("the queue is full");
    assert!(
        matches!(&refused, TsError::Busy(message) if message.contains("the server is busy")),
        "{refused:?}"
    );
    store.release.add_permits(4);
    for read in alice.into_iter().chain(bob) {
        read.await
            .expect("a task")
            .expect("a queued read is served");
    }
    assert_eq!(service_in_flight(&service), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_ends_by_its_deadline() {
    let store = Arc::new(HeldStore::default());
    let service = service(
        Arc::clone(&store),
        ReadSettings {
            max_concurrent_reads: 1,
            max_queued_reads: 4,
            read_deadline: Duration::from_millis(200),
        },
    );
    // A read the store never answers ends with how to narrow it, not a hang.
    let error = service
        .latest(
            &tenant("alice"),
            &table("transit", "buses"),
            LatestBody::default(),
        )
        .await
        .expect_err("past the deadline");
    assert!(
        matches!(&error, TsError::Limit(message) if message.contains("deadline of 200 ms")
            && message.contains("shorter time range")),
        "{error:?}"
    );
    assert_eq!(service_in_flight(&service), 0, "its slot is given back");

    // A read that waits its whole deadline for a slot never started: it is busy, not too big.
    let held = service
        .read_gate()
        .admit(&tenant("alice"))
        .await
        .expect("the only slot");
    let waiting = service
        .list_tables(&tenant("bob"), None)
        .await
        .expect_err("no slot within the deadline");
    assert!(
        matches!(&waiting, TsError::Busy(message) if message.contains("waited")),
        "{waiting:?}"
    );
    assert!(
        store.entered().is_empty(),
        "bob's read never reached the store"
    );
    drop(held);
    assert_eq!(service_in_flight(&service), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_plan_without_counting_and_stop_at_the_deadline() {
    let store = Arc::new(HeldStore {
        scan_rows: 1_000,
        ..HeldStore::default()
    });
    let roomy = service(Arc::clone(&store), ReadSettings::default());
    let answer = roomy
        .query(
            &tenant("alice"),
            "SELECT count(*), max(x) FROM t_db.x_table",
        )
        .await;
    // The table name is the one asked for; the fake store knows any.
    let answer = answer.expect("planned from table_meta");
    assert_eq!(
        answer.rows,
        vec![vec![serde_json::json!(1000), serde_json::json!(999)]]
    );

    let big = Arc::new(HeldStore {
        scan_rows: 400_000,
        ..HeldStore::default()
    });
    // A deadline that has passed when evaluation starts: the blocking work (which no abandoned
    // future could stop) gives up at its first look at the clock.
    let hurried = service(
        big,
        ReadSettings {
            read_deadline: Duration::ZERO,
            ..ReadSettings::default()
        },
    );
    let error = hurried
        .query(
            &tenant("alice"),
            "SELECT k, avg(x) FROM t_db.x_table WHERE x > 5 GROUP BY k ORDER BY 2",
        )
        .await
        .expect_err("past the deadline");
    assert!(
        matches!(&error, TsError::Limit(message) if message.contains("deadline")),
        "{error:?}"
    );
}

/// A tenant that used more than its part of the CPU has its scans run at low priority; the
/// others do not.
#[tokio::test]
async fn a_heavy_tenants_scans_run_at_low_priority() {
    let store = Arc::new(HeldStore {
        scan_rows: 10,
        ..HeldStore::default()
    });
    let service = service(
        Arc::clone(&store),
        ReadSettings {
            max_concurrent_reads: 2,
            ..ReadSettings::default()
        },
    );
    let sql = "SELECT count(*) FROM t_db.x_table";
    let (heavy, light) = (tenant("heavy"), tenant("light"));
    service.query(&heavy, sql).await.expect("answered");
    // Half a CPU second is a quarter of two slots over the last second; the CPU clock counts,
    // so on a busy machine it takes longer than half a second.
    let spin = || {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(200) {
            std::hint::black_box(0u64);
        }
        Ok(())
    };
    for _ in 0..50 {
        if service.read_gate().is_heavy(&heavy) {
            break;
        }
        service
            .read_gate()
            .run_blocking(&heavy, spin)
            .await
            .expect("ran");
    }
    assert!(service.read_gate().is_heavy(&heavy));
    service.query(&heavy, sql).await.expect("answered");
    service.query(&light, sql).await.expect("answered");
    let priorities = store.scan_priorities.lock().expect("not poisoned").clone();
    assert_eq!(priorities, [false, true, false]);
}
