//! Storage for Membrain: one trait, [`MemoryStore`], and one SQL implementation, [`SqlStore`],
//! that runs on SQLite (embedded, the default) and on PostgreSQL (production) side by side.
//!
//! Both backends share one set of queries through sqlx's `Any` driver, with portable column
//! types (text, 64-bit integers; times as Unix microseconds; lists as JSON text) and a small
//! [`Backend`] switch where the dialects differ (transaction start, row locking). Each backend has
//! its own migrations under `migrations/`.
//!
//! Every method that touches memories takes the caller's [`TenantId`] and filters by it in SQL:
//! no query can return another tenant's rows.
//!
//! Durability: an ingest job is committed by [`MemoryStore::enqueue_ingest`] before the API
//! answers 202; [`MemoryStore::complete_ingest`] writes the memory and finishes the job in one
//! transaction, so a crash leaves either a pending job or a finished one, never half of each.
//! SQLite runs in WAL mode with `synchronous = FULL`.
//!
//! Bounds: a tenant's memories, stored bytes and pending ingest jobs are counted in the row every
//! writing transaction already locks, and checked against [`Limits`] inside those transactions,
//! so concurrent writers cannot overshoot a quota; histories and merged tags stay within their
//! limits; finished jobs and tombstones are pruned ([`MemoryStore::prune`]).
//!
//! Architecture invariant: this crate knows nothing of HTTP, MCP or the CLI; it converts rows to
//! and from `membrain-memory` types.

mod error;
mod records;
mod sql;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod transfer;
mod turns;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use membrain_auth::KeyHash;
use membrain_memory::graph::Edge;
use membrain_memory::{Embedding, JobId, Limits, Memory, MemoryBrief, MemoryId, TenantId};

pub use error::StoreError;
pub use records::{
    DeleteSelector, EmbeddingTarget, IndexChanges, IndexEntry, IngestAction, IngestJob,
    IngestRequest, IngestResult, JobError, JobStatus, KeyOwner, KeyRecord, LeaseToken, LinkRecord,
    MemoryListing, MemoryStats, PendingEmbedding, PreparedLink, PreparedMemory, Pruned,
    TenantUsage,
};
pub use sql::{Backend, SqlStore, StoreOptions};

/// A content change prepared by the domain: the new text and what is derived from it. The
/// context line is re-derived by the store, which holds the memory's category.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedContent {
    pub content: String,
    pub content_hash: String,
    pub keywords: Vec<String>,
    /// The new content's vector; `None` leaves it to be made in the background.
    pub embedding: Option<Embedding>,
}

/// What an update changes; each field left `None` stays as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemoryChange {
    pub content: Option<PreparedContent>,
    /// The new tags, replacing the old ones.
    pub tags: Option<Vec<String>>,
    /// A corrected observation time.
    pub observed_at: Option<DateTime<Utc>>,
}

/// Everything Membrain keeps, behind one interface.
#[async_trait]
pub trait MemoryStore: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Answers when the database can be reached (`/ready`).
    async fn ping(&self) -> Result<(), StoreError>;

    // Keys.
    async fn create_key(
        &self,
        tenant: &TenantId,
        hash: &KeyHash,
        label: &str,
    ) -> Result<KeyRecord, StoreError>;
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Revokes a key by its id; `NotFound` when no such key exists.
    async fn revoke_key(&self, key_id: &str) -> Result<KeyRecord, StoreError>;
    /// The tenant of an active (not revoked) key.
    async fn tenant_for_key(&self, hash: &KeyHash) -> Result<Option<TenantId>, StoreError>;
    /// Who owns a key, revoked or not; `None` for a key the database never held.
    async fn key_owner(&self, hash: &KeyHash) -> Result<Option<KeyOwner>, StoreError>;

    // Ingest jobs.
    /// Commits a queued job and returns it; durable when this returns. Refused with
    /// `QuotaExceeded` when the tenant's pending jobs, memories or stored bytes are at their
    /// limits.
    async fn enqueue_ingest(
        &self,
        tenant: &TenantId,
        request: &IngestRequest,
        limits: &Limits,
    ) -> Result<IngestJob, StoreError>;
    /// Claims up to `max` jobs (queued, or running with an expired lease) of one tenant for
    /// `lease`, oldest first. Tenants take turns: the tenant is the first one after `after` (in
    /// tenant order, wrapping around) with a job waiting, so a worker that passes the tenant of
    /// its last batch serves every waiting tenant before any tenant twice, and one tenant's burst
    /// delays another's job by at most the batch in progress (less: workers hand the rest of a
    /// batch back when another tenant waits, [`release_ingest_jobs`](Self::release_ingest_jobs)).
    /// Tenants in `skip` are passed over (another worker of the process has their batch).
    async fn claim_ingest_jobs(
        &self,
        lease: Duration,
        max: usize,
        after: Option<&TenantId>,
        skip: &[TenantId],
    ) -> Result<Vec<IngestJob>, StoreError>;
    /// Extends the leases of jobs still held by these claims; returns how many were extended
    /// (fewer when another worker took a job over).
    async fn renew_ingest_leases(
        &self,
        jobs: &[(JobId, LeaseToken)],
        lease: Duration,
    ) -> Result<usize, StoreError>;
    /// Writes the memory as `membrain_memory::ingest::decide` decides (a new one, or merged into
    /// its exact or near duplicate, within the tag and history limits) and its links, and
    /// completes the job, in one transaction. `Conflict` when the job's
    /// lease is no longer this claim's; `QuotaExceeded` when a new memory would cross the
    /// tenant's quotas.
    async fn complete_ingest(
        &self,
        job: &IngestJob,
        memory: PreparedMemory,
        limits: &Limits,
    ) -> Result<IngestResult, StoreError>;
    /// Marks the job failed, if this claim still holds it (`Conflict` otherwise).
    async fn fail_ingest(&self, job: &IngestJob, error: &JobError) -> Result<(), StoreError>;
    /// Puts a claimed job back in the queue after a transient failure, if this claim still
    /// holds it.
    async fn requeue_ingest(&self, job: &IngestJob) -> Result<(), StoreError>;
    /// Hands claimed jobs back untouched, so that another tenant's turn comes first: queued
    /// again as they were, the claim's attempt not counted. Only jobs this claim still holds;
    /// returns how many.
    async fn release_ingest_jobs(&self, jobs: &[IngestJob]) -> Result<usize, StoreError>;
    /// Whether a tenant other than `tenant` has a job queued.
    async fn other_tenant_waiting(&self, tenant: &TenantId) -> Result<bool, StoreError>;
    /// How many jobs are queued and not claimed, over all tenants (the ingest queue's depth,
    /// for the metrics; an index range count).
    async fn queued_ingest_jobs(&self) -> Result<u64, StoreError>;
    async fn ingest_job(
        &self,
        tenant: &TenantId,
        job_id: JobId,
    ) -> Result<Option<IngestJob>, StoreError>;

    // Memories.
    /// The memories among `ids` that belong to `tenant`, in the order asked, with their links.
    async fn memories(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<Memory>, StoreError>;
    /// A page of the tenant's memories, newest first (by creation time, then id), with their
    /// links: the ones after `listing.before`, carrying `listing.tag` when it is set.
    async fn list_memories(
        &self,
        tenant: &TenantId,
        listing: &MemoryListing,
    ) -> Result<Vec<Memory>, StoreError>;
    /// The briefs of the memories among `ids` that belong to `tenant`, in the order asked: their
    /// texts without links or history, for where a memory is shown beside another.
    async fn memory_briefs(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<MemoryBrief>, StoreError>;
    /// The tenant's memories that share a content hash with `content_hash`, if any.
    async fn memory_by_hash(
        &self,
        tenant: &TenantId,
        content_hash: &str,
    ) -> Result<Option<MemoryId>, StoreError>;
    /// Applies `change`: a content change is kept in the memory's history.
    async fn update_memory(
        &self,
        tenant: &TenantId,
        id: MemoryId,
        change: MemoryChange,
        limits: &Limits,
    ) -> Result<Memory, StoreError>;
    /// Deletes what `selector` names and returns the ids deleted. The content of the ingest
    /// jobs that wrote them is scrubbed in the same transaction: deleted means unreadable.
    async fn delete_memories(
        &self,
        tenant: &TenantId,
        selector: &DeleteSelector,
    ) -> Result<Vec<MemoryId>, StoreError>;

    /// What the tenant holds, against its quotas.
    async fn tenant_usage(&self, tenant: &TenantId) -> Result<TenantUsage, StoreError>;

    // Search indexes.
    /// The tenant's current revision: it grows with every change to the tenant's memories, so an
    /// index that holds it is up to date. 0 for a tenant that never changed.
    async fn tenant_revision(&self, tenant: &TenantId) -> Result<i64, StoreError>;
    /// Memories changed and deleted after revision `since` (-1 for everything), with vectors made
    /// by `model` only. When deletions after `since` were already pruned, the answer is the whole
    /// tenant with `full` set.
    async fn index_changes(
        &self,
        tenant: &TenantId,
        since: i64,
        model: &str,
    ) -> Result<IndexChanges, StoreError>;
    /// Up to `limit` memories and links (of any tenant) whose vector is missing or was made by
    /// another model than `model`, except texts `model` refused.
    async fn pending_embeddings(
        &self,
        model: &str,
        limit: usize,
    ) -> Result<Vec<PendingEmbedding>, StoreError>;
    /// Stores vectors made for [`MemoryStore::pending_embeddings`]. A target whose text changed or
    /// vanished meanwhile is skipped (`text` must still match).
    async fn store_embeddings(
        &self,
        done: &[(PendingEmbedding, Embedding)],
    ) -> Result<(), StoreError>;
    /// Records that `model` refused these texts (an input the service will never embed), so the
    /// background embedder stops asking; they stay lexical-only until their text or the model
    /// changes.
    async fn refuse_embeddings(
        &self,
        refused: &[PendingEmbedding],
        model: &str,
    ) -> Result<(), StoreError>;

    // Work one process does at a time.
    /// Takes the lease `name` for `holder` until `ttl` from now, or renews it when `holder`
    /// already has it; true when `holder` holds it afterwards. Another holder gets it only once
    /// it expired, so a process that dies hands its work on within `ttl`.
    async fn hold_lease(&self, name: &str, holder: &str, ttl: Duration)
    -> Result<bool, StoreError>;
    /// Gives up a lease `holder` holds (on shutdown), so the next holder need not wait for it to
    /// expire; nothing happens when another process holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    // Maintenance.
    /// Deletes finished ingest jobs completed before `jobs_before` and tombstones recorded
    /// before `tombstones_before`, a bounded batch at a time.
    async fn prune(
        &self,
        jobs_before: chrono::DateTime<chrono::Utc>,
        tombstones_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Pruned, StoreError>;

    // Links.
    /// Links two memories of the tenant (or re-describes an existing link).
    async fn link(
        &self,
        tenant: &TenantId,
        a: MemoryId,
        b: MemoryId,
        description: &str,
        embedding: Option<&Embedding>,
    ) -> Result<(), StoreError>;
    /// Removes the link between two memories; `false` when there was none.
    async fn unlink(&self, tenant: &TenantId, a: MemoryId, b: MemoryId)
    -> Result<bool, StoreError>;
    /// Every edge touching `ids`, oriented away from them, with the description's vector.
    async fn edges_from(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<Edge>, StoreError>;

    async fn stats(&self, tenant: &TenantId, top: usize) -> Result<MemoryStats, StoreError>;

    // Export and import, one tenant at a time.
    /// A page of the tenant's memories in id order, after `after`.
    async fn export_memories(
        &self,
        tenant: &TenantId,
        after: Option<MemoryId>,
        limit: usize,
    ) -> Result<Vec<Memory>, StoreError>;
    /// Stores exported memories in one transaction. Each keeps its id unless another tenant
    /// owns that id; one that duplicates an existing memory exactly merges into it; one already
    /// present is skipped. Returns, in order, the id now holding each and what happened. A
    /// vector, when given, is stored with the memory (otherwise the background embedder makes
    /// it).
    async fn import_memories(
        &self,
        tenant: &TenantId,
        items: &[ImportItem],
        limits: &Limits,
    ) -> Result<Vec<(MemoryId, ImportOutcome)>, StoreError>;
}

/// One memory to import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    pub memory: Memory,
    pub content_hash: String,
    pub embedding: Option<Embedding>,
}

/// What importing one memory did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Created,
    /// It was already there (same id, same tenant).
    Skipped,
    /// An exact duplicate under another id existed; the import points at it.
    Merged,
}
