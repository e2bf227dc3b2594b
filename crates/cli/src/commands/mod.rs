//! One module per subcommand group.

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

use anyhow::{Context, Result};
use membrain_store::{MemoryStore, SqlStore, StoreOptions};

use crate::settings::Common;

/// Opens (and migrates) the configured database.
pub async fn open_store(common: &Common) -> Result<Arc<SqlStore>> {
    common.prepare_data_dir()?;
    // The driver's own message may quote the URL: what reaches the terminal has no password.
    let store = SqlStore::connect(&common.database_url, &StoreOptions::default())
        .await
        .map_err(|error| {
            anyhow::anyhow!(membrain_sql::redact_in(
                &error.to_string(),
                &common.database_url
            ))
        })
        .with_context(|| format!("opening the database {}", common.database_for_display()))?;
    tracing::info!(database = %common.database_for_display(), backend = store.backend().name(), "database ready");
    Ok(Arc::new(store))
}
