//! The values the store takes and returns, besides the domain types of `membrain-memory`.

use chrono::{DateTime, Utc};
use membrain_memory::{Embedding, JobId, MemoryId, NewMemory, TenantId};
use serde::{Deserialize, Serialize};

/// An API key as stored: never the key itself, only its hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    /// A public handle for the key (`key_…`), used to revoke it.
    pub id: String,
    pub tenant: TenantId,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One page of a tenant's memories, newest first ([`MemoryStore::list_memories`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryListing {
    /// Only memories carrying this tag (as stored: trimmed, lower case).
    pub tag: Option<String>,
    /// Only memories older than this one, in the order (`created_at`, then `id`, both
    /// descending): the last memory of the previous page.
    pub before: Option<(DateTime<Utc>, MemoryId)>,
    pub limit: usize,
}

use membrain_memory::ingest::SimilarMemory;
pub use membrain_memory::ingest::{IngestAction, JobStatus};

/// What an ingest job was asked to do, stored with the job so it can resume after a crash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestRequest {
    pub memory: NewMemory,
    /// A tag regex that limits which existing memories ingest may link to. Not stored as a tag.
    pub ingestion_scope: Option<String>,
}

/// The outcome of a completed job, as stored with it. The memory itself is not copied into the
/// job (a copy would grow with every job and outlive the memory's deletion):
/// `GET /memories/jobs/{id}` reads the memory by `memory_id` when it is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestResult {
    pub status: String,
    pub memory_id: MemoryId,
    pub action: IngestAction,
}

/// Identifies one claim of a job: completion, failure, requeue and lease renewal succeed only
/// for the claim that currently holds the job, so a worker whose lease ran out cannot overwrite
/// what the worker that took the job over decided.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub String);

/// A durable ingest job.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestJob {
    pub id: JobId,
    pub tenant: TenantId,
    pub status: JobStatus,
    pub request: IngestRequest,
    pub result: Option<IngestResult>,
    pub error: Option<JobError>,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The claim holding a running job (`None` when queued or finished).
    pub lease: Option<LeaseToken>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// A memory ready to be written: the validated input plus everything derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedMemory {
    pub new: NewMemory,
    pub content_hash: String,
    pub keywords: Vec<String>,
    pub context: String,
    /// The content's vector, when the embedder could make one (otherwise it is made later).
    pub embedding: Option<Embedding>,
    /// An existing memory that says the same thing in other words: the new wording replaces
    /// its content instead of being stored twice.
    pub near_duplicate: Option<SimilarMemory>,
    /// Links to make from the new memory to existing ones.
    pub links: Vec<PreparedLink>,
}

/// A link ingest makes: the other end, why, and the description's vector.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedLink {
    pub other: MemoryId,
    pub description: String,
    pub embedding: Option<Embedding>,
}

/// One memory as a search index needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub id: MemoryId,
    pub revision: i64,
    pub content: String,
    pub tags: Vec<String>,
    /// The memory's earlier wordings (merged near-duplicates, updated contents), newest last:
    /// what it said before stays findable by its own words.
    pub earlier_wordings: Vec<String>,
    /// When the memory's fact was observed, in microseconds since the epoch.
    pub observed_at: i64,
    /// Only a vector made by the model the caller asked for.
    pub embedding: Option<Vec<f32>>,
}

/// What changed in a tenant's memories since a revision, up to `revision`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexChanges {
    /// The tenant revision these changes bring an index up to.
    pub revision: i64,
    /// The changes are the whole tenant (asked for with `since` -1, or because deletions after
    /// `since` were pruned from the change feed): an index must drop what it holds first.
    pub full: bool,
    /// Memories added or changed, in revision order.
    pub upserts: Vec<IndexEntry>,
    /// Memories deleted, with the revision of the deletion.
    pub removals: Vec<(MemoryId, i64)>,
}

/// What a tenant holds, against its quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TenantUsage {
    pub memories: i64,
    /// Content and history bytes of the tenant's memories.
    pub stored_bytes: i64,
    /// Ingest jobs queued or running.
    pub pending_jobs: i64,
}

/// What one maintenance round removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub jobs: u64,
    pub tombstones: u64,
}

/// Who owns a key, whether or not it was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub tenant: TenantId,
    pub revoked: bool,
}

/// A text whose vector is missing or was made by another model.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEmbedding {
    pub tenant: TenantId,
    pub target: EmbeddingTarget,
    pub text: String,
}

/// What a vector belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbeddingTarget {
    Memory(MemoryId),
    /// A link, by its two ends (either order).
    Link(MemoryId, MemoryId),
}

/// Which memories a bulk delete removes. There is deliberately no "everything" variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteSelector {
    Id(MemoryId),
    /// Memories that carry every listed tag, and are in `category` when given.
    Filter {
        tags: Vec<String>,
        category: Option<String>,
    },
}

/// Counts for `GET /stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryStats {
    pub total_memories: i64,
    pub total_links: i64,
    pub top_tags: Vec<(String, i64)>,
    pub categories: Vec<(String, i64)>,
}

/// A link as exported: both ends and its description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkRecord {
    pub memory_id_1: MemoryId,
    pub memory_id_2: MemoryId,
    pub description: String,
    pub created_at: DateTime<Utc>,
}
