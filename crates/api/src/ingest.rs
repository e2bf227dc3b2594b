//! The ingest worker: takes durable jobs from the store, derives what a memory needs, and
//! writes it. Runs inside the API process; several processes may run workers on one PostgreSQL
//! database, since claiming a job is atomic and leased.

use std::sync::Arc;
use std::time::Duration;

use membrain_memory::text::{content_hash, derive_context, keywords};
use membrain_store::{IngestJob, JobError, MemoryStore, PreparedMemory, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A job that failed this many times for reasons other than bad input is given up on.
const MAX_ATTEMPTS: i64 = 5;
/// Keywords kept per memory (at ingest and on update).
pub(crate) const KEYWORDS_PER_MEMORY: usize = 8;
/// Tags derived from keywords when the caller gives none.
const AUTO_TAGS: usize = 3;

pub struct IngestWorker {
    store: Arc<dyn MemoryStore>,
    ready: Arc<Notify>,
    lease: Duration,
    poll_interval: Duration,
}

impl IngestWorker {
    pub fn new(
        store: Arc<dyn MemoryStore>,
        ready: Arc<Notify>,
        lease: Duration,
        poll_interval: Duration,
    ) -> Self {
        Self {
            store,
            ready,
            lease,
            poll_interval,
        }
    }

    /// Works until `shutdown`; a job in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            match self.store.claim_ingest_job(self.lease).await {
                Ok(Some(job)) => {
                    failures = 0;
                    let span =
                        tracing::info_span!("ingest", job_id = %job.id, tenant = %job.tenant);
                    self.process(job).instrument(span).await;
                }
                Ok(None) => {
                    failures = 0;
                    tokio::select! {
                        _ = self.ready.notified() => {}
                        _ = tokio::time::sleep(self.poll_interval) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    tracing::warn!(error = %e, ?backoff, "could not claim ingest jobs");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
        }
    }

    async fn process(&self, job: IngestJob) {
        let prepared = prepare(&job);
        match self.store.complete_ingest(&job, prepared).await {
            Ok(result) => {
                tracing::info!(memory_id = %result.memory_id, action = ?result.action, "ingested");
            }
            Err(StoreError::Conflict(reason)) => {
                tracing::info!(%reason, "job already finished elsewhere");
            }
            Err(e) if job.attempts >= MAX_ATTEMPTS => {
                tracing::error!(error = %e, attempts = job.attempts, "giving up on ingest job");
                let error = JobError {
                    code: "INGEST_FAILED".into(),
                    message: format!("ingest failed after {} attempts: {e}", job.attempts),
                };
                if let Err(e) = self.store.fail_ingest(job.id, &error).await {
                    tracing::error!(error = %e, "could not mark the job failed; it will be retried");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, attempts = job.attempts, "ingest failed; requeueing");
                if let Err(e) = self.store.requeue_ingest(job.id).await {
                    tracing::warn!(error = %e, "could not requeue; the lease will expire instead");
                }
            }
        }
    }
}

/// Derives everything a memory needs from a job's validated request: the dedup hash, keywords,
/// a context line, and tags when the caller gave none.
pub fn prepare(job: &IngestJob) -> PreparedMemory {
    let mut new = job.request.memory.clone();
    let keywords = keywords(&new.content, KEYWORDS_PER_MEMORY);
    if new.tags.is_empty() {
        new.tags = keywords.iter().take(AUTO_TAGS).cloned().collect();
    }
    PreparedMemory {
        content_hash: content_hash(&new.content),
        context: derive_context(&new.category, &keywords),
        keywords,
        new,
        links: Vec::new(),
    }
}
