//! [`Opened`]: the one way `serve`, `api` and `mcp` open what they run on (the database, the
//! time-series store) and close it again. A command's body opens through it and returns early
//! with `?` wherever it likes; [`with_opened`] closes everything afterwards, whatever the body
//! returned, so no early return leaves a database pool or an unflushed time-series log behind.

use std::sync::Arc;

use anyhow::Result;
use membrain_store::SqlStore;
use membrain_ts_service::TimeSeriesService;
use tokio_util::sync::CancellationToken;

use super::ts_store::TimeSeries;
use crate::settings::{Common, TimeSeriesSettings};

/// What a command opened, closed by [`with_opened`].
#[derive(Default)]
pub struct Opened {
    store: Option<Arc<SqlStore>>,
    series: Option<TimeSeries>,
}

impl Opened {
    /// Opens (and migrates) the configured database, waiting for a PostgreSQL that cannot be
    /// reached yet ([`super::DATABASE_WAIT`]): servers open through here.
    pub async fn store(&mut self, common: &Common) -> Result<Arc<SqlStore>> {
        let store = super::open_store_waiting(common, super::DATABASE_WAIT).await?;
        self.store = Some(store.clone());
        Ok(store)
    }

    /// Opens the configured time-series store and starts its upkeep until `shutdown`.
    pub async fn series(
        &mut self,
        settings: &TimeSeriesSettings,
        shutdown: &CancellationToken,
    ) -> Result<Arc<TimeSeriesService>> {
        let series = TimeSeries::open(settings).await?;
        series.spawn_maintenance(shutdown.clone());
        let service = series.service.clone();
        self.series = Some(series);
        Ok(service)
    }

    /// Closes what was opened: the database's pools, then the time-series store (checkpointed).
    async fn close(self) {
        if let Some(store) = self.store {
            store.close().await;
        }
        if let Some(series) = self.series {
            series.close().await;
        }
    }
}

/// Runs `body` with a fresh [`Opened`], then closes what it opened, whatever it returned.
pub async fn with_opened<T>(body: impl AsyncFnOnce(&mut Opened) -> Result<T>) -> Result<T> {
    let mut opened = Opened::default();
    let result = body(&mut opened).await;
    opened.close().await;
    result
}
