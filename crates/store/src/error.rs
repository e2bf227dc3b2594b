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

    /// Whether the database could not serve the request for a reason of its own (unreachable,
    /// shutting down, out of disk or connections) rather than because of a bug, so callers can
    /// answer 503 and the client can retry once the operator has mended it.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database { source, .. } => membrain_sql::is_unavailable(source),
            _ => false,
        }
    }

    /// Whether the database is out of disk space: the operator must make room.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Self::Database {
                source: sqlx::Error::Database(error),
                ..
            } => error.code().is_some_and(|code| storage_full(&code)),
            _ => false,
        }
    }
}

/// SQLite's "database or disk is full" (13, and extended codes of it); PostgreSQL's
/// `disk_full` (53100).
fn storage_full(code: &str) -> bool {
    code == "53100" || code.parse::<i64>().is_ok_and(|code| code & 0xff == 13)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_and_full_disks_are_told_from_bugs() {
        let cases = [
            // (code, unavailable, storage full)
            ("08006", true, false),  // PostgreSQL: connection failure
            ("57P01", true, false),  // PostgreSQL: admin shutdown
            ("53100", true, true),   // PostgreSQL: disk full
            ("53300", true, false),  // PostgreSQL: too many connections
            ("57014", true, false),  // PostgreSQL: statement timeout
            ("42601", false, false), // PostgreSQL: syntax error (a bug)
            ("23505", false, false), // PostgreSQL: unique violation
            ("13", true, true),      // SQLite: FULL
            ("5", true, false),      // SQLite: BUSY
            ("778", true, false),    // SQLite: IOERR_WRITE (10 | 3 << 8)
            ("19", false, false),    // SQLite: CONSTRAINT
        ];
        for (code, unavailable, full) in cases {
            assert_eq!(
                membrain_sql::is_unavailable_code(code),
                unavailable,
                "{code}"
            );
            assert_eq!(storage_full(code), full, "{code}");
        }
    }
}
