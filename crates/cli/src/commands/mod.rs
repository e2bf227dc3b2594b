//! One module per subcommand group.

pub mod database;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod network;
mod network_aws;
mod network_emulate;
pub mod opened;
pub mod semantic;
pub mod serve;
pub mod servers;
pub mod timeseries;
pub mod transfer;
pub mod ts_store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use membrain_sql::Backend;
use membrain_store::{MemoryStore, SqlStore, StoreOptions};

use crate::settings::Common;

/// How long a server waits for a PostgreSQL that cannot be reached yet (a database still
/// starting beside the tasks, a network path not yet up) before it gives up. One-shot commands
/// do not wait: an operator at a terminal wants the error at once.
pub const DATABASE_WAIT: Duration = Duration::from_secs(90);

/// Runs `connect` until it succeeds, trying again with a growing pause for up to `wait` while
/// `unavailable` says the database at `url` cannot be reached yet (each attempt logged with the
/// URL's password hidden). Any other error, or one after the wait, is returned.
pub async fn retry_while_unavailable<T, E, F>(
    url: &str,
    wait: Duration,
    mut connect: impl FnMut() -> F,
    unavailable: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(500);
    let mut attempt = 1u32;
    loop {
        match connect().await {
            Err(error) if unavailable(&error) && tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(
                    database = %membrain_sql::redact_url(url),
                    attempt,
                    error = %membrain_sql::redact_in(&error.to_string(), url),
                    "the database cannot be reached yet; trying again",
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Opens (and migrates) the configured database.
pub async fn open_store(common: &Common) -> Result<Arc<SqlStore>> {
    open_store_waiting(common, Duration::ZERO).await
}

/// Opens (and migrates) the configured database, trying again for up to `wait` while PostgreSQL
/// is unreachable or starting, so a server that starts before its database waits for it
/// instead of exiting and being restarted over and over. Any other error ends the wait at once.
pub async fn open_store_waiting(common: &Common, wait: Duration) -> Result<Arc<SqlStore>> {
    common.prepare_data_dir()?;
    let url = &common.database_url;
    let is_postgres = Backend::from_url(url) == Some(Backend::Postgres);
    let options = StoreOptions::default();
    let store = retry_while_unavailable(
        url,
        wait,
        || SqlStore::connect(url, &options),
        |error: &membrain_store::StoreError| error.is_unavailable() && is_postgres,
    )
    .await
    // The driver's own message may quote the URL: what reaches the terminal has no password.
    .map_err(|error| anyhow::anyhow!(membrain_sql::redact_in(&error.to_string(), url)))
    .with_context(|| format!("opening the database {}", common.database_for_display()))?;
    tracing::info!(database = %common.database_for_display(), backend = store.backend().name(), "database ready");
    Ok(Arc::new(store))
}
