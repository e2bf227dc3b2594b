//! What Membrain's SQL stores (memories in `membrain-store`, time series in `membrain-ts-sql`)
//! share: which database a URL names ([`Backend`]) and how it is opened ([`Pools`]) — on SQLite
//! one writer connection (so this process's writers queue instead of contending for the file
//! lock) beside a pool of readers, in WAL mode; on PostgreSQL one pool for both.

pub mod app_role;
#[cfg(feature = "test-support")]
pub mod testing;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyPool, AssertSqlSafe};

/// The database behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite:…` or `postgres:…` / `postgresql:…`; anything else is `None`.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// How a writing transaction starts. SQLite takes the write lock up front, so a transaction
    /// that reads and then writes cannot fail half-way with "database is locked"; PostgreSQL's
    /// row locks need no such care.
    pub fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// PostgreSQL lets several tasks claim rows at once without blocking each other; SQLite has
    /// one writer, so the plain statement is already exclusive.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }
}

/// Starts a writing transaction on `pool` (see [`Backend::begin_write`]).
///
/// A SQLite connection whose COMMIT failed for lack of disk space is left unusable by sqlx:
/// SQLite has already rolled the transaction back by itself, so the ROLLBACK sqlx sends next
/// fails too, and sqlx goes on believing a transaction is open — every later `begin` on that
/// connection fails with `InvalidSavePointStatement`, forever (seen in the fault harness: once
/// the disk filled, no write ever succeeded again, even with room). Such a connection is closed,
/// so the pool opens a fresh one, and the transaction is tried once more.
pub async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    match pool.begin_with(backend.begin_write()).await {
        Err(sqlx::Error::InvalidSavePointStatement) => {
            // On SQLite the writer pool holds one connection: the one just refused.
            if let Ok(stuck) = pool.acquire().await {
                let _ = stuck.close().await;
            }
            pool.begin_with(backend.begin_write()).await
        }
        other => other,
    }
}

/// How big the pools are and how long a caller waits for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections a pool opens (readers on SQLite; all on PostgreSQL).
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// PostgreSQL only: the server cancels a statement that runs longer. A request that gives
    /// up does not stop its query on the server (dropping the future only drops the client's
    /// side), so without this one expensive statement could hold a connection and CPU there
    /// long after its caller left. `None` leaves the server's setting.
    pub statement_timeout: Option<Duration>,
}

impl PoolSettings {
    /// The bound on PostgreSQL statements when a store sets none: as long as the longest
    /// request the API serves (its request timeout), so nothing legitimate is cut short.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("unsupported database URL: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl,
    /// `step` says what was being done (for messages), `source` what went wrong.
    #[error("{step}: {source}")]
    Failed {
        step: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

/// A database's pools. On PostgreSQL `read` and `write` are the same pool.
#[derive(Debug, Clone)]
pub struct Pools {
    pub backend: Backend,
    pub read: AnyPool,
    pub write: AnyPool,
}

impl Pools {
    /// Opens the database at `url` (creating a SQLite file if needed).
    pub async fn open(url: &str, settings: &PoolSettings) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or(OpenError::UnsupportedUrl)?;
        let failed = |step| move |source| OpenError::Failed { step, source };
        let pool = |max_connections: u32| {
            // No ping each time a connection is taken from the pool: that would be a second round
            // trip per query (to SQLite's worker thread, or across the network to PostgreSQL). A
            // broken connection still fails its query and is replaced.
            AnyPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(settings.acquire_timeout)
                .test_before_acquire(false)
        };
        match backend {
            Backend::Sqlite => {
                let connect = AnyConnectOptions::from_str(&sqlite_url_with_create(url))
                    .map_err(failed("parsing the SQLite URL"))?;
                // An acknowledged write must survive a power cut, not only a crash: the writer
                // syncs the log on every commit. Set here rather than trusted to a default,
                // since `synchronous` belongs to each connection and defaults vary by build.
                let write = pool(1)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            sqlx::query("PRAGMA synchronous = FULL")
                                .execute(&mut *connection)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(connect.clone())
                    .await
                    .map_err(failed("opening the SQLite database"))?;
                // WAL lets readers run beside the writer; it is a property of the file, so
                // setting it once on the writer is enough.
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&write)
                    .await
                    .map_err(failed("enabling WAL"))?;
                let read = pool(settings.max_connections)
                    .connect_with(connect)
                    .await
                    .map_err(failed("opening SQLite readers"))?;
                Ok(Self {
                    backend,
                    read,
                    write,
                })
            }
            Backend::Postgres => {
                let statement_timeout = settings.statement_timeout;
                let pool = pool(settings.max_connections)
                    .after_connect(move |connection, _| {
                        Box::pin(async move {
                            if let Some(timeout) = statement_timeout {
                                // A plain SET lasts for the session: every statement this
                                // pooled connection runs from now on.
                                sqlx::query(AssertSqlSafe(format!(
                                    "SET statement_timeout = {}",
                                    timeout.as_millis().max(1)
                                )))
                                .execute(&mut *connection)
                                .await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
                    .map_err(failed("connecting to PostgreSQL"))?;
                Ok(Self {
                    backend,
                    read: pool.clone(),
                    write: pool,
                })
            }
        }
    }

    /// Runs `migrator` on the writer. On PostgreSQL on a connection of its own without the
    /// statement timeout (a migration over a large table may rightly take longer), which is
    /// closed afterwards rather than returned to the pool unbounded.
    pub async fn migrate(&self, migrator: &Migrator) -> Result<(), MigrateError> {
        match self.backend {
            Backend::Sqlite => migrator.run(&self.write).await,
            Backend::Postgres => {
                let mut connection = self.write.acquire().await?.detach();
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut connection)
                    .await?;
                migrator.run(&mut connection).await
            }
        }
    }

    /// Closes the pools, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// One pool's connections at a moment, for the metrics (`membrain_db_pool_connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// `read` or `write` on SQLite, `shared` on PostgreSQL.
    pub pool: &'static str,
    /// Connections open, in use or idle.
    pub size: u32,
    pub idle: u32,
    /// Most connections the pool may open.
    pub max: u32,
}

/// The use of a database's pools (`read` and `write` as [`Pools`] holds them): reading it only
/// looks at counters the pools keep, so it may be sampled on every metrics scrape.
pub fn pool_usage(backend: Backend, read: &AnyPool, write: &AnyPool) -> Vec<PoolUsage> {
    let usage = |pool: &'static str, of: &AnyPool| PoolUsage {
        pool,
        size: of.size(),
        idle: u32::try_from(of.num_idle()).unwrap_or(u32::MAX),
        max: of.options().get_max_connections(),
    };
    match backend {
        Backend::Sqlite => vec![usage("read", read), usage("write", write)],
        Backend::Postgres => vec![usage("shared", write)],
    }
}

/// Whether `error` means the database could not serve for a reason of its own (unreachable,
/// starting, shutting down, out of disk or connections), not that the statement was wrong: the
/// caller may answer 503 or try again later.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| is_unavailable_code(&code)),
        _ => false,
    }
}

/// Error codes that mean "the database cannot serve now", not "the query is wrong": PostgreSQL
/// classes 08 (connection exception), 53 (insufficient resources: disk, memory, connections),
/// 57P (the server shutting down or starting) and 57014 (a statement cancelled, as the statement
/// timeout does to one that ran too long); SQLite BUSY (5), IOERR (10), FULL (13) and
/// CANTOPEN (14).
pub fn is_unavailable_code(code: &str) -> bool {
    if code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "57014"
    {
        return true;
    }
    code.parse::<i64>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 10 | 13 | 14))
}

/// `url` with its secrets hidden, for messages and logs: the password of `user:password@`
/// and the values of query parameters that carry credentials (`password=`, `sslpassword=`,
/// `sslkey=`…) become `***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or_default();
                if credentials.contains(':') {
                    format!("{scheme}://{user}:***@{host}")
                } else {
                    format!("{scheme}://{user}@{host}")
                }
            }
            None => base.to_owned(),
        },
        None => base.to_owned(),
    };
    match query {
        None => base,
        Some(query) => {
            let params: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_secret_parameter(name) => format!("{name}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
    }
}

fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "pass", "secret", "token", "key"]
        .iter()
        .any(|word| name.contains(word))
}

/// `text` (an error message that may quote `url`) with `url`'s password and secret parameters
/// replaced by `***`, wherever they appear.
pub fn redact_in(text: &str, url: &str) -> String {
    let mut secrets: Vec<&str> = Vec::new();
    let base = url.split('?').next().unwrap_or(url);
    if let Some((_, rest)) = base.split_once("://")
        && let Some((credentials, _)) = rest.rsplit_once('@')
        && let Some((_, password)) = credentials.split_once(':')
    {
        secrets.push(password);
    }
    if let Some((_, query)) = url.split_once('?') {
        secrets.extend(query.split('&').filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            is_secret_parameter(name).then_some(value)
        }));
    }
    let mut text = text.replace(url, &redact_url(url));
    for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "***");
    }
    text
}

/// A SQLite URL that creates the file when it does not exist (unless it names a mode).
fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            Backend::from_url("sqlite:///tmp/x.db"),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/d"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/d"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::from_url("mysql://u@h/d"), None);
    }

    #[test]
    fn sqlite_urls_create_their_file_unless_told_otherwise() {
        assert_eq!(
            sqlite_url_with_create("sqlite:///a.db"),
            "sqlite:///a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_with_create("sqlite:///a.db?cache=shared"),
            "sqlite:///a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_url_with_create("sqlite:///a.db?mode=ro"),
            "sqlite:///a.db?mode=ro"
        );
    }

    #[test]
    fn secrets_in_urls_are_hidden() {
        let cases = [
            (
                "postgres://u:s3cret@db:5432/m",
                "postgres://u:***@db:5432/m",
            ),
            ("postgres://u@db/m", "postgres://u@db/m"),
            ("postgres://u:p@ss@db/m", "postgres://u:***@db/m"),
            (
                "postgres://db/m?user=u&password=s3cret&sslmode=require",
                "postgres://db/m?user=u&password=***&sslmode=require",
            ),
            ("sqlite:///var/lib/m.db", "sqlite:///var/lib/m.db"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let url = "postgres://u:s3cret@db/m?sslpassword=k3y";
        let message = format!("cannot connect to {url}: password s3cret refused, k3y bad");
        let redacted = redact_in(&message, url);
        assert!(
            !redacted.contains("s3cret") && !redacted.contains("k3y"),
            "{redacted}"
        );
    }

    #[tokio::test]
    async fn a_sqlite_file_opens_with_one_writer_in_wal_mode() {
        let dir = tempfile::tempdir().expect("a directory");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let settings = PoolSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: None,
        };
        let pools = Pools::open(&url, &settings).await.expect("open");
        assert_eq!(pools.backend, Backend::Sqlite);
        assert_eq!(pools.write.options().get_max_connections(), 1);
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pools.read)
            .await
            .expect("journal mode");
        assert_eq!(mode, "wal");
        // 2 is FULL: every commit is synced before it is acknowledged.
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pools.write)
            .await
            .expect("synchronous");
        assert_eq!(synchronous, 2);
        pools.close().await;
        let error = Pools::open("mysql://x", &settings)
            .await
            .expect_err("unsupported");
        assert!(matches!(error, OpenError::UnsupportedUrl));
    }

    #[tokio::test]
    async fn postgres_cancels_statements_past_the_timeout() {
        // A database of its own: the migration below must not meet another run's history.
        let database =
            crate::testing::TestDatabase::postgres_on(&crate::testing::postgres_admin_url()).await;
        let url = database.url.clone();
        let settings = PoolSettings {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_millis(200)),
        };
        let pools = Pools::open(&url, &settings).await.expect("open PostgreSQL");
        let shown: String = sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(&pools.read)
            .await
            .expect("show");
        assert_eq!(shown, "200ms");
        let started = std::time::Instant::now();
        let error = sqlx::query("SELECT pg_sleep(5)")
            .execute(&pools.read)
            .await
            .expect_err("cancelled by the server");
        assert!(started.elapsed() < Duration::from_secs(4), "{error}");
        let code = match &error {
            sqlx::Error::Database(error) => error.code().map(|code| code.into_owned()),
            _ => None,
        };
        assert_eq!(code.as_deref(), Some("57014"), "{error}");
        // Migrations run without the bound, on a connection that does not go back to the pool.
        static NONE: Migrator = Migrator::DEFAULT;
        pools.migrate(&NONE).await.expect("migrate");
        let shown: String = sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(&pools.write)
            .await
            .expect("show");
        assert_eq!(shown, "200ms");
        pools.close().await;
    }
}
