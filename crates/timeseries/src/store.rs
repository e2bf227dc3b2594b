//! The one storage trait every time-series store implements: embedded, PostgreSQL/SQLite, and
//! Amazon Timestream.

use membrain_memory::TenantId;

use crate::{
    AttributeName, BatchItem, DatabaseName, DimensionFilter, LatestQuery, LatestResult, RangeQuery,
    RangeResult, ReadLimits, SeriesPoints, Span, TableDescription, TableMeta, TableRef,
    TableSummary, Timestamp, TsError, WriteLimits, WriteOutcome,
};

/// What `ts_query` reads from a store before it filters, groups and orders in memory: every
/// record of the matching series in `[start, end)`. `measures` only narrows which measure values
/// come back (all when `None`): a record with none of them is still returned, with no measures,
/// because to SQL it is a row whose measures are NULL.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    pub table: TableRef,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub dimensions: DimensionFilter,
    pub measures: Option<Vec<AttributeName>>,
}

impl Scan {
    pub fn contains(&self, time: Timestamp) -> bool {
        self.start.is_none_or(|start| time >= start) && self.end.is_none_or(|end| time < end)
    }
}

/// The message for a scan that would read more than `limit` records.
pub fn scan_limit_error(limit: usize) -> TsError {
    TsError::Limit(format!(
        "the query would read more than {limit} records: narrow the time range (WHERE time >= …) \
         or filter by dimension"
    ))
}

/// A time-series store. Every call names the tenant; a store keeps tenants' databases apart so
/// that one tenant's `transit` is never another's. Tables are created by their first write (with
/// the store's default retention), as `ts_write_records` promises.
#[async_trait::async_trait]
pub trait TimeSeriesStore: Send + Sync + 'static {
    /// What this store is, for logs and `membrain ts status` (never a secret).
    fn describe(&self) -> String;

    /// The tenant's tables, in one database or all, sorted by database and table.
    async fn list_tables(
        &self,
        tenant: &TenantId,
        database: Option<&DatabaseName>,
    ) -> Result<Vec<TableSummary>, TsError>;

    /// A table with its counts (records, series, earliest and latest): `ts_describe_table`.
    /// Counting reads the whole table on some stores; planning a query uses
    /// [`table_meta`](Self::table_meta) instead.
    async fn describe_table(
        &self,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<TableDescription, TsError>;

    /// A table's retention, creation time and schema, without counting anything: what planning
    /// a query needs. One row or one lookup on every store.
    async fn table_meta(&self, tenant: &TenantId, table: &TableRef) -> Result<TableMeta, TsError>;

    /// Writes parsed records: each is admitted whole or rejected with its reason (see
    /// [`TableMeta::admit`](crate::TableMeta::admit)); a record for a series and time that is
    /// already stored is accepted unchanged when its measures are equal and rejected otherwise.
    /// Admitted records are durable when this returns. A write that would create a table over
    /// [`WriteLimits::max_tables_per_tenant`], or store records over
    /// [`WriteLimits::max_points_per_tenant`], is refused whole with
    /// [`TsError::QuotaExceeded`].
    async fn write(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        items: Vec<BatchItem>,
        limits: &WriteLimits,
    ) -> Result<WriteOutcome, TsError>;

    async fn latest(
        &self,
        tenant: &TenantId,
        query: &LatestQuery,
        limits: &ReadLimits,
    ) -> Result<LatestResult, TsError>;

    async fn range(
        &self,
        tenant: &TenantId,
        query: &RangeQuery,
        limits: &ReadLimits,
    ) -> Result<RangeResult, TsError>;

    /// Raw records for `ts_query`; more than `limits.max_scan_rows` is [`scan_limit_error`].
    /// Reads (this and the others) give up with the deadline's error once `limits.deadline`
    /// has passed.
    async fn scan(
        &self,
        tenant: &TenantId,
        scan: &Scan,
        limits: &ReadLimits,
    ) -> Result<Vec<SeriesPoints>, TsError>;

    /// Changes how long a table keeps records; older records are dropped.
    async fn set_retention(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        retention: Span,
    ) -> Result<TableDescription, TsError>;

    /// Deletes a table and its records (and its database, when it was the last table).
    async fn drop_table(&self, tenant: &TenantId, table: &TableRef) -> Result<(), TsError>;
}
