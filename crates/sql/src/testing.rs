//! Fresh databases for tests and benchmarks: a SQLite file in a temporary directory, or a new
//! PostgreSQL database on the server named by `MEMBRAIN_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped again when the handle is dropped. No
//! run ever writes into (or measures) another run's data.

use sqlx::{AssertSqlSafe, Connection};

use crate::Backend;

/// The server tests create their PostgreSQL databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("MEMBRAIN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    backend: Backend,
    postgres_name: Option<String>,
    /// The server's URL the database is created and dropped through.
    admin: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory for SQLite");
                let url = format!("sqlite://{}", dir.path().join("membrain.db").display());
                Self {
                    url,
                    backend,
                    postgres_name: None,
                    admin: String::new(),
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => Self::postgres_on(&postgres_admin_url()).await,
        }
    }

    /// A new database on the PostgreSQL server of `admin` (a URL of any database there), for a
    /// benchmark given a server: it never writes into the database the URL names.
    pub async fn postgres_on(admin: &str) -> Self {
        let database = Self::reserve_on(admin);
        database.create().await;
        database
    }

    /// A PostgreSQL database reserved for one test but not created yet (see
    /// [`TestDatabase::create`]): for what a server does while its database is missing.
    pub fn postgres_not_created() -> Self {
        Self::reserve_on(&postgres_admin_url())
    }

    fn reserve_on(admin: &str) -> Self {
        let admin = admin.to_owned();
        let name = format!("membrain_test_{}", uuid::Uuid::new_v4().simple());
        let base = admin
            .rsplit_once('/')
            .map(|(base, _)| base)
            .unwrap_or(&admin);
        Self {
            url: format!("{base}/{name}"),
            backend: Backend::Postgres,
            postgres_name: Some(name),
            admin,
            _dir: None,
        }
    }

    /// Creates the PostgreSQL database of [`TestDatabase::postgres_not_created`].
    pub async fn create(&self) {
        let Some(name) = &self.postgres_name else {
            return;
        };
        let admin = &self.admin;
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be running for the tests ({admin}): {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create a test database");
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Drop runs outside any runtime; a short-lived thread with its own runtime does the
        // asynchronous clean-up.
        let admin = std::mem::take(&mut self.admin);
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}
