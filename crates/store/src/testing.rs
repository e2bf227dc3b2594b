//! Fresh databases for tests (`membrain-sql`'s [`TestDatabase`](membrain_sql::testing)), opened
//! as a memory store.

pub use membrain_sql::testing::postgres_admin_url;

use crate::{Backend, SqlStore, StoreOptions};

/// A database that exists for one test, dropped with the handle; it derefs to `membrain-sql`'s
/// (its `url`, `backend()`, `create()`).
#[derive(Debug)]
pub struct TestDatabase(membrain_sql::testing::TestDatabase);

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        Self(membrain_sql::testing::TestDatabase::new(backend).await)
    }

    /// A new database on the PostgreSQL server of `admin` (see `membrain-sql`).
    pub async fn postgres_on(admin: &str) -> Self {
        Self(membrain_sql::testing::TestDatabase::postgres_on(admin).await)
    }

    /// A PostgreSQL database reserved for one test but not created yet.
    pub fn postgres_not_created() -> Self {
        Self(membrain_sql::testing::TestDatabase::postgres_not_created())
    }

    pub async fn store(&self) -> SqlStore {
        SqlStore::connect(&self.url, &StoreOptions::default())
            .await
            .expect("open the test store")
    }
}

impl std::ops::Deref for TestDatabase {
    type Target = membrain_sql::testing::TestDatabase;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
