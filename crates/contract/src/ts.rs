//! The time-series calls, `/api/v1/ts/…`. Their bodies and answers are the time-series domain's
//! own types (`membrain-timeseries`: seed 001's server takes the same bodies in process), so
//! this module names them in one place and adds the two shapes only the REST API has.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /ts/tables?database=` | | [`TablesOutput`] |
//! | `GET /ts/tables/{db}/{table}` | | [`TableDescription`] |
//! | `DELETE /ts/tables/{db}/{table}` | | [`DropAnswer`] |
//! | `PUT /ts/tables/{db}/{table}/retention` | [`RetentionBody`] | [`TableDescription`] |
//! | `POST /ts/tables/{db}/{table}/records` | [`WriteBody`] | [`WriteOutcome`] |
//! | `POST /ts/tables/{db}/{table}/latest` | [`LatestBody`] | [`LatestResult`] |
//! | `POST /ts/tables/{db}/{table}/range` | [`RangeBody`] | [`RangeResult`] |
//! | `POST /ts/query` | [`QueryBody`] | [`QueryResult`] |

pub use membrain_timeseries::service::{
    LatestBody, RangeBody, RetentionBody, TablesOutput, WriteBody,
};
pub use membrain_timeseries::sql::QueryResult;
pub use membrain_timeseries::{LatestResult, RangeResult, TableDescription, WriteOutcome};
use serde::{Deserialize, Serialize};

/// `POST /ts/query`: one statement of the read-only SQL subset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    pub sql: String,
}

/// `DELETE /ts/tables/{db}/{table}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropAnswer {
    /// Always `dropped`.
    pub status: String,
    pub database: String,
    pub table: String,
}
