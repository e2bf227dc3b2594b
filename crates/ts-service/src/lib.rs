//! [`TimeSeriesService`]: the time-series calls as the REST API and the gateway profile's MCP
//! tools make them — JSON arguments checked into the query model (`membrain_timeseries::service`),
//! the store called with the caller's tenant, answers ready to serialise. One place, so the
//! REST routes and the direct tools cannot drift apart, and one place where a tenant's reads are
//! kept from hurting another's:
//!
//! * every read (list, describe, latest, range, query) is admitted by the [`ReadGate`]: a bound
//!   on reads running at once, a fair share per tenant, a bounded queue answered
//!   [`TsError::Busy`] past its end;
//! * every read has a deadline ([`ReadSettings::read_deadline`]): the service stops waiting
//!   then, and the deadline travels in [`ReadLimits`] to the loops that run on blocking threads
//!   (which no abandoned future can stop), so they stop too;
//! * `ts_query`'s evaluation ([`SqlQuery::execute`](membrain_timeseries::sql::SqlQuery::execute))
//!   runs on a blocking thread, off the async runtime's workers.
//!
//! This crate exists because those need an async runtime, which `membrain-timeseries` (pure)
//! must not depend on.

mod admission;
mod connecting;

use std::future::Future;
use std::sync::Arc;

use membrain_memory::TenantId;
use membrain_timeseries::service::{
    LatestBody, RangeBody, RetentionBody, TablesOutput, WriteBody, database_filter,
};
use membrain_timeseries::sql::{self, QueryResult};
use membrain_timeseries::{
    Deadline, LatestResult, RangeResult, ReadLimits, TableDescription, TableRef, TimeSeriesStore,
    Timestamp, TsError, WriteLimits, WriteOutcome, parse_records,
};

pub use admission::{
    DEFAULT_MAX_QUEUED_READS, DEFAULT_READ_DEADLINE, ReadGate, ReadPermit, ReadSettings,
    default_concurrent_reads,
};
pub use connecting::ConnectingStore;

/// The time-series calls over one store, with the configured limits. Clones share the store
/// and the read gate.
#[derive(Clone)]
pub struct TimeSeriesService {
    store: Arc<dyn TimeSeriesStore>,
    pub write_limits: WriteLimits,
    pub read_limits: ReadLimits,
    reads: Arc<ReadGate>,
}

impl std::fmt::Debug for TimeSeriesService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeSeriesService")
            .field("store", &self.store.describe())
            .field("reads", self.reads.settings())
            .finish()
    }
}

impl TimeSeriesService {
    /// A service with the default [`ReadSettings`] (one read per CPU, a 10 s deadline).
    pub fn new(
        store: Arc<dyn TimeSeriesStore>,
        write_limits: WriteLimits,
        read_limits: ReadLimits,
    ) -> Self {
        Self {
            store,
            write_limits,
            read_limits,
            reads: ReadGate::new(ReadSettings::default()),
        }
    }

    /// The same service with other read settings (a gate of its own).
    pub fn with_read_settings(mut self, settings: ReadSettings) -> Self {
        self.reads = ReadGate::new(settings);
        self
    }

    /// The same service, its reads admitted by `gate` (see [`ReadGate::sharing`]).
    pub fn with_read_gate(mut self, gate: Arc<ReadGate>) -> Self {
        self.reads = gate;
        self
    }

    pub fn read_settings(&self) -> &ReadSettings {
        self.reads.settings()
    }

    pub fn store(&self) -> &Arc<dyn TimeSeriesStore> {
        &self.store
    }

    /// Reads running or waiting now, over all tenants.
    pub fn reads_in_flight(&self) -> usize {
        self.reads.in_flight()
    }

    /// The gate every read of this service (and its clones) passes.
    pub fn read_gate(&self) -> &Arc<ReadGate> {
        &self.reads
    }

    /// Runs one read: admitted by the gate, given the read limits with this call's deadline,
    /// and abandoned at the deadline. Waiting for a slot counts against the deadline; a call
    /// that never got one answers busy rather than "narrow your query".
    /// `kind` labels the read's metrics (`membrain_ts_reads_total`,
    /// `membrain_ts_read_duration_seconds`): tables, describe, latest, range or query.
    async fn read<T, F>(
        &self,
        kind: &'static str,
        tenant: &TenantId,
        read: impl FnOnce(ReadLimits) -> F,
    ) -> Result<T, TsError>
    where
        F: Future<Output = Result<T, TsError>>,
    {
        let started = std::time::Instant::now();
        let result = self.admitted_read(tenant, read).await;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!("membrain_ts_reads_total", "kind" => kind, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("membrain_ts_read_duration_seconds", "kind" => kind)
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn admitted_read<T, F>(
        &self,
        tenant: &TenantId,
        read: impl FnOnce(ReadLimits) -> F,
    ) -> Result<T, TsError>
    where
        F: Future<Output = Result<T, TsError>>,
    {
        let deadline = Deadline::after(self.reads.settings().read_deadline);
        let at = deadline.instant().map(tokio::time::Instant::from_std);
        let admission = self.reads.admit(tenant);
        let _permit = match at {
            Some(at) => tokio::time::timeout_at(at, admission)
                .await
                .map_err(|_| waited_too_long(self.reads.settings().read_deadline))??,
            None => admission.await?,
        };
        let limits = ReadLimits {
            deadline,
            low_priority: self.reads.is_heavy(tenant),
            ..self.read_limits.clone()
        };
        let reading = read(limits);
        match at {
            Some(at) => tokio::time::timeout_at(at, reading)
                .await
                .unwrap_or_else(|_| Err(deadline.error())),
            None => reading.await,
        }
    }

    pub async fn list_tables(
        &self,
        tenant: &TenantId,
        database: Option<&str>,
    ) -> Result<TablesOutput, TsError> {
        let database = database_filter(database)?;
        self.read("tables", tenant, |_| async {
            let tables = self.store.list_tables(tenant, database.as_ref()).await?;
            Ok(TablesOutput { tables })
        })
        .await
    }

    pub async fn describe_table(
        &self,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<TableDescription, TsError> {
        self.read("describe", tenant, |_| {
            self.store.describe_table(tenant, table)
        })
        .await
    }

    /// Writes a batch: over the record limit (or empty) is refused whole; over a quota too;
    /// otherwise each record is written or rejected with its reason.
    pub async fn write_records(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        body: WriteBody,
    ) -> Result<WriteOutcome, TsError> {
        let written = self.checked_write(tenant, table, body).await;
        let outcome = match &written {
            Ok(outcome) => {
                metrics::counter!("membrain_ts_records_written_total")
                    .increment(outcome.records_ingested as u64);
                "ok"
            }
            Err(TsError::Invalid { .. } | TsError::Limit(_) | TsError::QuotaExceeded(_)) => {
                "rejected"
            }
            Err(_) => "failed",
        };
        metrics::counter!("membrain_ts_writes_total", "outcome" => outcome).increment(1);
        written
    }

    async fn checked_write(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        body: WriteBody,
    ) -> Result<WriteOutcome, TsError> {
        self.write_limits.check_batch_size(body.records.len())?;
        let (items, rejected) = parse_records(&body.records, &self.write_limits);
        let outcome = if items.is_empty() {
            WriteOutcome::default()
        } else {
            self.store
                .write(tenant, table, items, &self.write_limits)
                .await?
        };
        Ok(outcome.with_rejections(rejected))
    }

    pub async fn latest(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        body: LatestBody,
    ) -> Result<LatestResult, TsError> {
        let query = body.into_query(table)?;
        self.read("latest", tenant, |limits| async move {
            self.store.latest(tenant, &query, &limits).await
        })
        .await
    }

    pub async fn range(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        body: RangeBody,
    ) -> Result<RangeResult, TsError> {
        let query = body.into_query(table)?;
        self.read("range", tenant, |limits| async move {
            self.store.range(tenant, &query, &limits).await
        })
        .await
    }

    pub async fn set_retention(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        body: RetentionBody,
    ) -> Result<TableDescription, TsError> {
        let retention = body.span()?;
        self.store.set_retention(tenant, table, retention).await
    }

    pub async fn drop_table(&self, tenant: &TenantId, table: &TableRef) -> Result<(), TsError> {
        self.store.drop_table(tenant, table).await
    }

    /// `ts_query`: the read-only SQL subset over the tenant's tables. Planning reads the table's
    /// schema (no counting); evaluation runs on a blocking thread (at low priority for a tenant that used more than its
    /// part of the CPU lately) and stops at the deadline.
    pub async fn query(&self, tenant: &TenantId, sql: &str) -> Result<QueryResult, TsError> {
        let query = sql::parse(sql)?;
        self.read("query", tenant, |limits| async move {
            let meta = self.store.table_meta(tenant, query.table()).await?;
            let now = Timestamp::now();
            let scan = query.scan(&meta.schema, now)?;
            let series = self.store.scan(tenant, &scan, &limits).await?;
            self.reads
                .run_blocking(tenant, move || {
                    query.execute(&meta.schema, series, now, &limits)
                })
                .await
        })
        .await
    }
}

/// The answer to a call that spent its whole deadline waiting for a slot.
fn waited_too_long(deadline: std::time::Duration) -> TsError {
    TsError::Busy(format!(
        "the server is busy with other time-series reads: this one waited its whole deadline \
         ({} ms) for a slot without starting; retry in a second",
        deadline.as_millis()
    ))
}
