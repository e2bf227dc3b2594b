//! The one error type of the time-series domain and of every store behind [`TimeSeriesStore`](crate::TimeSeriesStore).

/// Why a time-series call failed. Each message says what was wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TsError {
    /// The caller sent something malformed: `field` names the argument.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A database or table the caller does not have (another tenant's looks the same).
    #[error("{0}")]
    NotFound(String),
    /// The request is well formed but over a configured limit.
    #[error("{0}")]
    Limit(String),
    /// A query that would write, or read outside the caller's tables.
    #[error("{0}")]
    Refused(String),
    /// The tenant's stored tables or records would go over its quota; the message names the
    /// quota, the tenant's usage and how to free space.
    #[error("{0}")]
    QuotaExceeded(String),
    /// Too many reads are running or waiting (on the server, or of this tenant): retry in a
    /// moment. Nothing was read.
    #[error("{0}")]
    Busy(String),
    /// The store cannot be reached or is failing; try again later.
    #[error("the time-series store is unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken invariant; logged, and answered without detail.
    #[error("internal time-series error: {0}")]
    Internal(String),
}

impl TsError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The message alone, for embedding in another message.
    pub fn message(&self) -> &str {
        match self {
            Self::Invalid { message, .. } => message,
            Self::NotFound(message)
            | Self::Limit(message)
            | Self::Refused(message)
            | Self::QuotaExceeded(message)
            | Self::Busy(message)
            | Self::Unavailable(message)
            | Self::Internal(message) => message,
        }
    }

    /// A stable machine-readable code for the REST error shape.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid_argument",
            Self::NotFound(_) => "not_found",
            Self::Limit(_) => "limit_exceeded",
            Self::Refused(_) => "query_refused",
            Self::QuotaExceeded(_) => "quota_exceeded",
            Self::Busy(_) => "busy",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn table_not_found(table: &crate::TableRef) -> Self {
        Self::NotFound(format!(
            "table {table} does not exist: list tables with ts_list_tables, or write records to create it"
        ))
    }

    pub fn database_not_found(database: &crate::DatabaseName) -> Self {
        Self::NotFound(format!(
            "database {database} does not exist: list tables with ts_list_tables, or write records to create it"
        ))
    }
}
