//! The background embedder: makes the vectors that are missing (imports, memories stored while
//! the embedder failed) or stale (made by another model), a batch at a time. Runs beside the
//! ingest workers; several processes may run it at once (the work is idempotent).

use std::sync::Arc;
use std::time::Duration;

use membrain_store::MemoryStore;
use tokio_util::sync::CancellationToken;

use super::Semantic;

/// Texts embedded per round.
const BATCH: usize = 64;

pub struct Backfill {
    store: Arc<dyn MemoryStore>,
    semantic: Arc<Semantic>,
    idle_poll: Duration,
}

impl Backfill {
    pub fn new(store: Arc<dyn MemoryStore>, semantic: Arc<Semantic>, idle_poll: Duration) -> Self {
        Self {
            store,
            semantic,
            idle_poll,
        }
    }

    /// Works until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let pause = match self.round().await {
                Ok(0) => {
                    failures = 0;
                    self.idle_poll
                }
                Ok(done) => {
                    failures = 0;
                    tracing::info!(done, "made missing or stale vectors");
                    Duration::ZERO
                }
                Err(message) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(500 * 2u64.pow(failures.min(7)));
                    tracing::warn!(error = %message, ?backoff, "could not make vectors");
                    backoff
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }

    /// One batch; how many texts were settled (vectors stored, or refusals recorded).
    pub async fn round(&self) -> Result<usize, String> {
        let model = self.semantic.model_id();
        let pending = self
            .store
            .pending_embeddings(model, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if pending.is_empty() {
            return Ok(0);
        }
        let texts = pending.iter().map(|p| p.text.clone()).collect();
        // A text the embedder refuses is set aside, not retried forever: otherwise it would stay
        // first in line and stall every tenant's vectors behind it.
        let answers = self
            .semantic
            .embed_each_in_background(texts)
            .await
            .map_err(|e| e.to_string())?;
        let mut done = Vec::new();
        let mut refused = Vec::new();
        for (pending, answer) in pending.into_iter().zip(answers) {
            match answer {
                Ok(embedding) => done.push((pending, embedding)),
                Err(error) => {
                    tracing::warn!(%error, tenant = %pending.tenant, "the embedder refused a text; it stays lexical-only");
                    refused.push(pending);
                }
            }
        }
        // Link descriptions repeat; the next link with the same words gets its vector at ingest.
        let descriptions: Vec<_> = done
            .iter()
            .filter(|(p, _)| matches!(p.target, membrain_store::EmbeddingTarget::Link(..)))
            .map(|(p, e)| (p.tenant.clone(), p.text.clone(), e.clone()))
            .collect();
        self.semantic.remember(&descriptions);
        if !done.is_empty() {
            self.store
                .store_embeddings(&done)
                .await
                .map_err(|e| e.to_string())?;
        }
        if !refused.is_empty() {
            self.store
                .refuse_embeddings(&refused, model)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(done.len() + refused.len())
    }
}
