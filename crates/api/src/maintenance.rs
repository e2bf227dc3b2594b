//! The maintenance loop: prunes finished ingest jobs and old deletion tombstones on a schedule,
//! so neither table grows with everything that ever happened. Runs beside the ingest workers;
//! several processes may run it on one database (pruning is idempotent).

use std::sync::Arc;
use std::time::Duration;

use membrain_store::MemoryStore;
use tokio_util::sync::CancellationToken;

/// How long finished things are kept, and how often to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Completed and failed ingest jobs are deleted this long after they finished (a client
    /// polling a job has this long to read its answer).
    pub jobs: Duration,
    /// Tombstones are deleted this long after the deletion: a search index in another process
    /// that is further behind loads its tenant afresh instead.
    pub tombstones: Duration,
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            jobs: Duration::from_secs(7 * 24 * 3600),
            tombstones: Duration::from_secs(24 * 3600),
            interval: Duration::from_secs(3600),
        }
    }
}

pub struct Maintenance {
    store: Arc<dyn MemoryStore>,
    retention: Retention,
}

impl Maintenance {
    pub fn new(store: Arc<dyn MemoryStore>, retention: Retention) -> Self {
        Self { store, retention }
    }

    /// Prunes once now, then every interval, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            self.round().await;
            tokio::select! {
                _ = tokio::time::sleep(self.retention.interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// One pruning pass; failures are logged and tried again next time.
    pub async fn round(&self) {
        let now = chrono::Utc::now();
        // A retention too long to subtract keeps everything.
        let before = |keep: Duration| {
            chrono::Duration::from_std(keep)
                .ok()
                .and_then(|keep| now.checked_sub_signed(keep))
                .unwrap_or(chrono::DateTime::UNIX_EPOCH)
        };
        match self
            .store
            .prune(
                before(self.retention.jobs),
                before(self.retention.tombstones),
            )
            .await
        {
            Ok(pruned) if pruned.jobs + pruned.tombstones > 0 => {
                tracing::info!(jobs = pruned.jobs, tombstones = pruned.tombstones, "pruned");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not prune finished jobs and tombstones"),
        }
    }
}
