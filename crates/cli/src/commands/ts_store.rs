//! Opens the configured time-series store (embedded, SQLite/PostgreSQL or Timestream) behind
//! the one [`TimeSeriesService`], and closes it gracefully.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use membrain_timeseries::TsError;
use membrain_ts_embedded::{EmbeddedOptions, EmbeddedStore};
use membrain_ts_service::{ConnectingStore, TimeSeriesService};
use membrain_ts_sql::{SqlTimeSeriesStore, SqlTsOptions};
use membrain_ts_timestream::{TimestreamOptions, TimestreamStore, TimestreamUrl};

use tokio_util::sync::CancellationToken;

use crate::settings::{TimeSeriesSettings, TsStoreLocation};

/// How often expired records are deleted from a SQL store.
const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Longest wait between attempts to reach a SQL store that was down at start.
const RECONNECT_MAX_BACKOFF: Duration = Duration::from_secs(15);

/// An open store, with what shutting it down needs.
pub struct TimeSeries {
    pub service: Arc<TimeSeriesService>,
    embedded: Option<Arc<EmbeddedStore>>,
    /// The SQL store once it is reached: at open, or later by the reconnecting task.
    sql: Arc<OnceLock<Arc<SqlTimeSeriesStore>>>,
    /// Stops the reconnecting task (if any) at close.
    reconnecting: CancellationToken,
}

impl TimeSeries {
    pub async fn open(settings: &TimeSeriesSettings) -> Result<Self> {
        let shown = settings.store.for_display();
        let sql = Arc::new(OnceLock::new());
        let reconnecting = CancellationToken::new();
        let (store, embedded): (Arc<dyn membrain_timeseries::TimeSeriesStore>, _) = match &settings
            .store
        {
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
                (store.clone(), Some(store))
            }
            TsStoreLocation::Sql(url) => {
                let options = SqlTsOptions {
                    default_retention: settings.default_retention,
                    ..SqlTsOptions::default()
                };
                match SqlTimeSeriesStore::connect(url, options.clone()).await {
                    Ok(store) => {
                        let store = Arc::new(store);
                        let _ = sql.set(store.clone());
                        (store, None)
                    }
                    // A database that is down or not created yet: serve anyway (the calls
                    // say why they fail) and keep trying, instead of exiting for a
                    // supervisor to restart over and over.
                    Err(TsError::Unavailable(error)) => {
                        tracing::warn!(store = %shown, %error, "the time-series store is not reachable; serving anyway and retrying in the background");
                        let connecting = Arc::new(ConnectingStore::new(shown.clone(), error));
                        spawn_reconnect(
                            url.clone(),
                            options,
                            connecting.clone(),
                            sql.clone(),
                            reconnecting.clone(),
                        );
                        (connecting, None)
                    }
                    Err(error) => {
                        return Err(error)
                            .with_context(|| format!("opening the time-series store {shown}"));
                    }
                }
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
                (Arc::new(store), None)
            }
        };
        if sql.get().is_some() || !matches!(settings.store, TsStoreLocation::Sql(_)) {
            tracing::info!(store = %shown, "time-series store ready");
        }
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
            reconnecting,
        })
    }

    /// Deletes expired records of the SQL store every hour until `shutdown` (reads already skip
    /// them; this keeps the tables from growing). The embedded store drops them at its
    /// checkpoints; Timestream on its own schedule.
    pub fn spawn_maintenance(&self, shutdown: CancellationToken) {
        if self.embedded.is_some() {
            return;
        }
        let sql = self.sql.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PRUNE_INTERVAL);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = every.tick() => {}
                }
                // Not reached yet (or not a SQL store): nothing to prune.
                let Some(store) = sql.get() else { continue };
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
    pub async fn close(mut self) {
        if let Some(store) = self.embedded.take()
            && let Err(error) = store.checkpoint().await
        {
            tracing::warn!(%error, "could not checkpoint the time-series store; the log replays on the next start");
        }
        self.reconnecting.cancel();
        if let Some(store) = self.sql.get() {
            store.close().await;
        }
    }
}

impl Drop for TimeSeries {
    /// Whatever path drops it (an early return on an error too), the reconnecting loop stops:
    /// it runs on a blocking thread, which the runtime would otherwise wait for at exit.
    fn drop(&mut self) {
        self.reconnecting.cancel();
    }
}

/// Tries to reach a SQL store that was down at start, with a growing pause, until it answers
/// (then calls go to it and maintenance finds it) or the server stops.
fn spawn_reconnect(
    url: String,
    options: SqlTsOptions,
    connecting: Arc<ConnectingStore>,
    sql: Arc<OnceLock<Arc<SqlTimeSeriesStore>>>,
    stop: CancellationToken,
) {
    // sqlx's connect future is not `Send` to the compiler (a higher-ranked lifetime in its
    // executor bounds), so it cannot be a spawned task: the loop runs on a blocking thread,
    // driven by this runtime's handle, and the pools it opens still live on this runtime.
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        runtime.block_on(reconnect(url, options, connecting, sql, stop));
    });
}

async fn reconnect(
    url: String,
    options: SqlTsOptions,
    connecting: Arc<ConnectingStore>,
    sql: Arc<OnceLock<Arc<SqlTimeSeriesStore>>>,
    stop: CancellationToken,
) {
    let mut pause = Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        // An attempt can take the pool's whole acquire timeout: stopping must not wait for it
        // (the runtime goes away under a timer that is still pending).
        let attempt = tokio::select! {
            _ = stop.cancelled() => return,
            attempt = SqlTimeSeriesStore::connect(&url, options.clone()) => attempt,
        };
        match attempt {
            Ok(store) => {
                let store = Arc::new(store);
                let _ = sql.set(store.clone());
                connecting.connected(store);
                let shown = membrain_timeseries::TimeSeriesStore::describe(connecting.as_ref());
                tracing::info!(store = %shown, "time-series store reached; ready");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, ?pause, "the time-series store is still not reachable");
                connecting.failed(error.to_string());
            }
        }
        pause = (pause * 2).min(RECONNECT_MAX_BACKOFF);
    }
}
