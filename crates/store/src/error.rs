//! The one error type of the store.

/// What can go wrong in storage. Callers map `NotFound` and `Conflict` to 4xx answers and treat
/// the rest as server faults.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A memory, job or key the caller named does not exist for this tenant.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The change would break a uniqueness rule (an update that makes two memories identical),
    /// or a job was finished by another worker.
    #[error("{0}")]
    Conflict(String),
    /// The tenant is at one of its quotas (memories, stored bytes, queued jobs); the message
    /// names the limit, the usage and how to make room.
    #[error("{0}")]
    QuotaExceeded(String),
    /// A stored value could not be read back (a bug or a hand-edited database).
    #[error("corrupt stored value in {column}: {detail}")]
    Corrupt {
        column: &'static str,
        detail: String,
    },
    #[error("database error during {operation}: {source}")]
    Database {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
}

impl StoreError {
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// Whether the database could not be reached at all (as opposed to a query failing), so
    /// callers can answer 503 and retry instead of reporting a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Database {
                source: sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
                ..
            }
        )
    }
}

/// Attaches the name of the operation to a database error, for logs that say what failed.
pub(crate) trait DbContext<T> {
    fn during(self, operation: &'static str) -> Result<T, StoreError>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn during(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { operation, source })
    }
}
