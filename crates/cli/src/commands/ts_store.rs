//! Opens the configured time-series store (embedded, SQLite/PostgreSQL or Timestream) behind
//! the one [`TimeSeriesService`], and closes it gracefully.

use std::sync::Arc;

use anyhow::{Context, Result};
use membrain_ts_embedded::{EmbeddedOptions, EmbeddedStore};
use membrain_ts_service::TimeSeriesService;
use membrain_ts_sql::{SqlTimeSeriesStore, SqlTsOptions};
use membrain_ts_timestream::{TimestreamOptions, TimestreamStore, TimestreamUrl};

use tokio_util::sync::CancellationToken;

use crate::settings::{TimeSeriesSettings, TsStoreLocation};

/// How often expired records are deleted from a SQL store.
const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3_600);

/// An open store, with what shutting it down needs.
pub struct TimeSeries {
    pub service: Arc<TimeSeriesService>,
    embedded: Option<Arc<EmbeddedStore>>,
    sql: Option<Arc<SqlTimeSeriesStore>>,
}

impl TimeSeries {
    pub async fn open(settings: &TimeSeriesSettings) -> Result<Self> {
        let shown = settings.store.for_display();
        let (store, embedded, sql): (Arc<dyn membrain_timeseries::TimeSeriesStore>, _, _) =
            match &settings.store {
                TsStoreLocation::Embedded(dir) => {
                    let options = EmbeddedOptions {
                        default_retention: settings.default_retention,
                        ..EmbeddedOptions::default()
                    };
                    let store = Arc::new(
                        EmbeddedStore::open(dir, options)
                            .await
                            .with_context(|| format!("opening the time-series store {shown}"))?,
                    );
                    (store.clone(), Some(store), None)
                }
                TsStoreLocation::Sql(url) => {
                    let options = SqlTsOptions {
                        default_retention: settings.default_retention,
                        ..SqlTsOptions::default()
                    };
                    let store = Arc::new(
                        SqlTimeSeriesStore::connect(url, options)
                            .await
                            .with_context(|| format!("opening the time-series store {shown}"))?,
                    );
                    (store.clone(), None, Some(store))
                }
                TsStoreLocation::Timestream(url) => {
                    let url = TimestreamUrl::parse(url)?;
                    // Timestream keeps records in whole days on its magnetic store.
                    const DAY: i64 = 86_400_000_000;
                    let days = (settings.default_retention.as_micros() + DAY - 1) / DAY;
                    let options = TimestreamOptions {
                        magnetic_store_days: days.max(1),
                        ..TimestreamOptions::default()
                    };
                    let store = TimestreamStore::connect(&url, None, options)
                        .await
                        .with_context(|| format!("connecting to {shown}"))?;
                    (Arc::new(store), None, None)
                }
            };
        tracing::info!(store = %shown, "time-series store ready");
        Ok(Self {
            service: Arc::new(
                TimeSeriesService::new(
                    store,
                    settings.write_limits.clone(),
                    settings.read_limits.clone(),
                )
                .with_read_settings(settings.reads.clone()),
            ),
            embedded,
            sql,
        })
    }

    /// Deletes expired records of the SQL store every hour until `shutdown` (reads already skip
    /// them; this keeps the tables from growing). The embedded store drops them at its
    /// checkpoints; Timestream on its own schedule.
    pub fn spawn_maintenance(&self, shutdown: CancellationToken) {
        let Some(store) = self.sql.clone() else {
            return;
        };
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PRUNE_INTERVAL);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = every.tick() => {}
                }
                match store.prune_expired().await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "expired time-series records deleted"),
                    Err(error) => {
                        tracing::warn!(%error, "could not delete expired time-series records")
                    }
                }
            }
        });
    }

    /// Checkpoints the embedded store (so the next start replays little) or closes the pool.
    pub async fn close(self) {
        if let Some(store) = self.embedded
            && let Err(error) = store.checkpoint().await
        {
            tracing::warn!(%error, "could not checkpoint the time-series store; the log replays on the next start");
        }
        if let Some(store) = self.sql {
            store.close().await;
        }
    }
}
