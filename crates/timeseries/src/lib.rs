//! Membrain's time-series domain, close to Amazon Timestream's model so its users feel at home:
//! each tenant has databases of tables; a record has a time, dimensions (name → string; equal
//! dimensions name one series) and one or more typed measures (`double`, `bigint`, `boolean`,
//! `varchar`, `timestamp`); each table has a retention.
//!
//! Pure: names, values, records and their admission into a table; the query model (latest,
//! range with bins and aggregates) with its reference semantics; the read-only SQL subset of
//! `ts_query` (`sql`); demo data and CSV / JSON-lines transfer; and the [`TimeSeriesStore`]
//! trait the stores implement (in other crates). No I/O here.

mod aggregate;
mod deadline;
pub mod demo;
mod error;
mod names;
mod query;
mod record;
pub mod service;
pub mod sql;
mod store;
mod time;
pub mod transfer;
mod value;

pub use aggregate::{Accumulator, Aggregate};
pub use deadline::{Deadline, DeadlineTicker, ROWS_PER_DEADLINE_CHECK};
pub use error::TsError;
pub use names::{AttributeName, DatabaseName, RESERVED_NAMES, TableName, TableRef};
pub use query::{
    LatestQuery, LatestResult, MeasureInfo, Point, RangePlan, RangeQuery, RangeResult, ReadLimits,
    SeriesPoints, TableDescription, TableSummary, WriteOutcome, cap_series, fold_range, plan_range,
    select_measures,
};
pub use record::{
    BatchItem, DEFAULT_MAX_POINTS_PER_TENANT, DEFAULT_MAX_TABLES_PER_TENANT, DEFAULT_RETENTION,
    DimensionFilter, Dimensions, MAX_DIMENSION_VALUE_BYTES, Record, Rejection, TableMeta,
    TableSchema, TenantUsage, WriteLimits, parse_record, parse_records,
};
pub use store::{Scan, TimeSeriesStore, scan_limit_error};
pub use time::{Bin, MICROS_PER_SECOND, Span, Timestamp};
pub use value::{MAX_VARCHAR_BYTES, MeasureType, MeasureValue};

#[cfg(feature = "test-support")]
pub mod testing;
