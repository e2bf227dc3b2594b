//! Fresh databases for tests: the memory store's `TestDatabase` (a SQLite file in a temporary
//! directory, or a new PostgreSQL database dropped afterwards), opened as a time-series store.

#![allow(dead_code)]

pub use membrain_store::Backend;
pub use membrain_store::testing::TestDatabase;
use membrain_ts_sql::{SqlTimeSeriesStore, SqlTsOptions};

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// The time-series store on a test database.
pub async fn store(database: &TestDatabase) -> SqlTimeSeriesStore {
    SqlTimeSeriesStore::connect(&database.url, SqlTsOptions::default())
        .await
        .expect("open the test store")
}
