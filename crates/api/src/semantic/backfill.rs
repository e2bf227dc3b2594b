//! The background embedder: makes the vectors that are missing (imports, memories stored while
//! the embedder failed) or stale (made by another model), a batch at a time. Runs beside the
//! ingest workers. However many processes share a database, one embeds at a time: the one that
//! holds the store's [`LEASE`] (renewed every round), so the tasks of a deployment do not all
//! embed the same pending texts. Another takes over within [`LEASE_TTL`] when it stops.

use std::sync::Arc;
use std::time::Duration;

use membrain_store::MemoryStore;
use tokio_util::sync::CancellationToken;

use super::{BackgroundWork, Semantic};

/// Texts embedded per round.
const BATCH: usize = 64;
/// The store lease whose holder embeds.
pub const LEASE: &str = "background-embedder";
/// How long a holder keeps the lease without renewing it: far longer than one round (64 texts in
/// small calls: seconds), so a slow round does not hand the work to another process midway.
pub const LEASE_TTL: Duration = Duration::from_secs(60);
/// Text bytes per call of the model within a round. The background lane is the one ingest uses:
/// a round of 64 long texts in one call would hold it for many seconds (each text costs up to
/// the model's full window), so a round goes in small calls (a few dozen link descriptions,
/// some 100 ms) and a waiting ingest batch takes the lane before the next one.
const CALL_BYTES: usize = 2 * 1024;

pub struct Backfill {
    store: Arc<dyn MemoryStore>,
    semantic: Arc<Semantic>,
    idle_poll: Duration,
    /// This process's name on the lease.
    holder: String,
}

impl Backfill {
    pub fn new(store: Arc<dyn MemoryStore>, semantic: Arc<Semantic>, idle_poll: Duration) -> Self {
        Self {
            store,
            semantic,
            idle_poll,
            holder: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
        }
    }

    /// Works until `shutdown`, while this process holds the lease; then lets go of it.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let pause = match self.round_if_holding().await {
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
        if let Err(error) = self.store.release_lease(LEASE, &self.holder).await {
            tracing::warn!(%error, "could not release the background embedder's lease; another process takes it when it expires");
        }
    }

    /// One round when this process holds (or now takes) the lease; 0 when another holds it.
    pub async fn round_if_holding(&self) -> Result<usize, String> {
        let held = self
            .store
            .hold_lease(LEASE, &self.holder, LEASE_TTL)
            .await
            .map_err(|e| e.to_string())?;
        if held { self.round().await } else { Ok(0) }
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
        // A text the embedder refuses is set aside, not retried forever: otherwise it would stay
        // first in line and stall every tenant's vectors behind it.
        let mut answers = Vec::with_capacity(pending.len());
        for call in calls(&pending) {
            answers.extend(
                self.semantic
                    .embed_each_in_background(call, BackgroundWork::Backfill)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
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

/// The pending texts in calls of at most [`CALL_BYTES`] (one text at least), in order.
fn calls(pending: &[membrain_store::PendingEmbedding]) -> Vec<Vec<String>> {
    let mut calls: Vec<Vec<String>> = Vec::new();
    let mut bytes = 0;
    for text in pending.iter().map(|p| &p.text) {
        match calls.last_mut() {
            Some(call) if bytes + text.len() <= CALL_BYTES => call.push(text.clone()),
            _ => {
                bytes = 0;
                calls.push(vec![text.clone()]);
            }
        }
        bytes += text.len();
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use membrain_memory::{MemoryId, TenantId};
    use membrain_store::{EmbeddingTarget, PendingEmbedding};

    fn pending(len: usize) -> PendingEmbedding {
        PendingEmbedding {
            tenant: TenantId::parse("t").unwrap_or_else(|e| panic!("{e}")),
            target: EmbeddingTarget::Memory(MemoryId::new()),
            text: "x".repeat(len),
        }
    }

    #[test]
    fn long_texts_go_one_per_call_and_short_ones_together() {
        let texts = [10, 20, 5_000, 30, CALL_BYTES, 1].map(pending);
        let sizes: Vec<Vec<usize>> = calls(&texts)
            .iter()
            .map(|call| call.iter().map(String::len).collect())
            .collect();
        assert_eq!(
            sizes,
            vec![
                vec![10, 20],
                vec![5_000],
                vec![30],
                vec![CALL_BYTES],
                vec![1]
            ]
        );
    }
}
