//! The Amazon Timestream for LiveAnalytics time-series store, for users who have it (it closed to
//! new customers on 2025-06-20; PostgreSQL is the production store).
//!
//! One Timestream database (named by the [`TimestreamUrl`]) holds every tenant: Membrain's
//! (tenant, database, table) is the Timestream table `{tenant}.{database}.{table}` (`naming`).
//! Records are multi-measure records with the measure name `membrain` (`write`), written 100 per
//! WriteRecords call with Timestream's rejections mapped back to the caller's indices. Every read
//! is Timestream Query SQL rendered from the validated query model (`sql`), its answer parsed
//! into `membrain-timeseries` results (`result`). [`TimestreamStore`] ties them together.
//!
//! Depends on `membrain-timeseries` for the model and `membrain-aws` for SDK configuration; knows
//! nothing of HTTP, MCP or the CLI.

mod naming;
mod result;
mod sql;
mod store;
mod url;
mod write;

pub use naming::physical_table;
pub use result::parse_timestamp;
pub use sql::MEASURE_NAME;
pub use store::{TimestreamOptions, TimestreamStore};
pub use url::TimestreamUrl;
pub use write::RECORDS_PER_CALL;
