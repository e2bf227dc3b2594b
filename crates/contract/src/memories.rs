//! Ingest, jobs, batch get, update and delete: `/api/v1/memories…`.

use chrono::{DateTime, Utc};
use membrain_memory::{JobId, Memory, MemoryId};
use serde::{Deserialize, Serialize};

/// Tags as a list, or as one comma-separated string (what people type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TagsInput {
    List(Vec<String>),
    Text(String),
}

impl TagsInput {
    /// The tags, a string split at its commas; blanks dropped.
    pub fn into_list(self) -> Vec<String> {
        match self {
            Self::List(list) => list,
            Self::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// `POST /memories`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddMemoryRequest {
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagsInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// A tag regex limiting what the memory may be linked to during ingest. Not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_scope: Option<String>,
    /// When the fact was observed, if not now: RFC 3339 (`2024-03-08T14:30:00Z`) or a date
    /// (`2024-03-08`). Questions naming a time ("last May") match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
}

/// `POST /memories` answers 202 with the durable job that will store the memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: String,
    pub job_id: JobId,
    pub job_status: JobStatus,
    /// Where to poll: `/api/v1/memories/jobs/{job_id}`.
    pub status_url: String,
    pub created_at: DateTime<Utc>,
}

/// Where an ingest job stands (the domain's own type: stored and answered alike).
pub use membrain_memory::ingest::JobStatus;

/// `GET /memories/jobs/{job_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestJobAnswer {
    pub job_id: JobId,
    pub status: JobStatus,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// A completed job's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<IngestOutcome>,
    /// A failed job's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobFailure>,
}

/// What a completed job did, and the memory as it is now (`null` once deleted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestOutcome {
    /// Always `success`.
    pub status: String,
    pub memory_id: MemoryId,
    pub action: IngestAction,
    #[serde(default)]
    pub memory: Option<Memory>,
}

/// What ingest did with the content (the domain's own type: stored and answered alike).
pub use membrain_memory::ingest::IngestAction;

/// Why a job failed, as `{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    pub code: String,
    pub message: String,
}

/// `POST /memories/batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    pub memory_ids: Vec<String>,
}

/// `POST /memories/batch`: every id asked for (a missing one is a 404 naming it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoriesAnswer {
    pub memories: Vec<Memory>,
    pub count: usize,
    /// Whether the answer's bounds on count or bytes cut the list.
    pub truncated: bool,
}

/// `PUT /memories/{memory_id}`: what to change; the answer is the [`Memory`] as updated.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagsInput>,
    /// A corrected observation time, in the forms `AddMemoryRequest::observed_at` takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
}

/// `DELETE /memories/bulk?…`: one memory by id (which wins), or every memory carrying all the
/// comma-separated `tags` and/or in `category`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeleteQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// `DELETE /memories/bulk`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteAnswer {
    /// Always `deleted`.
    pub status: String,
    pub deleted_count: usize,
    pub memory_ids: Vec<MemoryId>,
}

/// `GET /memories?limit=&cursor=&tag=`: a page of the tenant's memories, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListQuery {
    /// 1 to the API's result bound [default: 20].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// The previous page's `next_cursor`, to go on where it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Only memories carrying this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `GET /memories`: one page, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPage {
    pub memories: Vec<Memory>,
    pub count: usize,
    /// Pass as `cursor` for the next page; `null` on the last page. Opaque: stable while
    /// memories are added (they come before the first page), and a deleted memory only drops
    /// out of the pages.
    pub next_cursor: Option<String>,
}
