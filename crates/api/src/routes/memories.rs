//! Ingest, jobs, batch get, update and delete.

use axum::extract::State;
use axum::http::StatusCode;
use membrain_contract::memories::{
    Accepted, AddMemoryRequest, BatchRequest, DeleteAnswer, DeleteQuery, IngestJobAnswer,
    IngestOutcome, JobFailure, ListQuery, MemoriesAnswer, MemoryPage, TagsInput, UpdateRequest,
};
use membrain_memory::text::{content_hash, keywords};
use membrain_memory::{
    JobId, MemoryId, MemoryPatch, NewMemory, TagFilter, ValidationError, optional_observed_at,
};
use membrain_store::{
    DeleteSelector, IngestJob, IngestRequest, MemoryChange, MemoryListing, PreparedContent,
};

use super::{bound, json_size, load_memory, required_id};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, JsonBody, Tenant};
use crate::ingest::KEYWORDS_PER_MEMORY;
use crate::server::AppState;

/// `POST /memories`: validates, commits a job, answers 202. The job is durable before the reply.
pub async fn add_memory(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<AddMemoryRequest>,
) -> Result<(StatusCode, ApiJson<Accepted>), ApiError> {
    let mut memory = NewMemory::parse(
        &body.content,
        body.tags.map(TagsInput::into_list),
        body.category,
        &state.limits,
    )?;
    memory.observed_at = optional_observed_at(body.observed_at.as_deref(), chrono::Utc::now())?;
    let ingestion_scope = body.ingestion_scope.filter(|s| !s.trim().is_empty());
    if let Some(scope) = &ingestion_scope {
        TagFilter::from_scope_regex(Some(scope), &state.limits)
            .map_err(|e| ValidationError::new("ingestion_scope", e.message))?;
    }
    let job = state
        .store
        .enqueue_ingest(
            &tenant,
            &IngestRequest {
                memory,
                ingestion_scope,
            },
            &state.limits,
        )
        .await?;
    state.ingest.job_queued(&tenant);
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(Accepted {
            status: "accepted".to_owned(),
            job_id: job.id,
            job_status: job.status,
            status_url: format!("/api/v1/memories/jobs/{}", job.id),
            created_at: job.created_at,
        }),
    ))
}

/// `GET /memories/jobs/{job_id}`.
pub async fn ingest_job(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(job_id): ApiPath<String>,
) -> Result<ApiJson<IngestJobAnswer>, ApiError> {
    let id = JobId::parse_field(&job_id, "job_id")?;
    let job = state.store.ingest_job(&tenant, id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "ingest job {id} not found for this API key's tenant"
        ))
    })?;
    // The job names its memory; the memory is read now, so a deleted one is gone from here too.
    let memory = match &job.result {
        Some(result) => state
            .store
            .memories(&tenant, &[result.memory_id])
            .await?
            .pop(),
        None => None,
    };
    Ok(ApiJson(job_answer(job, memory)))
}

/// A job as `GET /memories/jobs/{job_id}` shows it, with its memory as it is now.
pub fn job_answer(job: IngestJob, memory: Option<membrain_memory::Memory>) -> IngestJobAnswer {
    IngestJobAnswer {
        job_id: job.id,
        status: job.status,
        attempts: job.attempts,
        created_at: job.created_at,
        started_at: job.started_at,
        completed_at: job.completed_at,
        result: job.result.map(|result| IngestOutcome {
            status: result.status,
            memory_id: result.memory_id,
            action: result.action,
            memory,
        }),
        error: job.error.map(|error| JobFailure {
            code: error.code,
            message: error.message,
        }),
    }
}

/// `POST /memories/batch`: every id must exist for the caller's tenant, or the answer is 404
/// naming the missing ones.
pub async fn get_memories(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<BatchRequest>,
) -> Result<JsonBody, ApiError> {
    if body.memory_ids.is_empty() {
        return Err(ValidationError::new("memory_ids", "must list at least one memory id").into());
    }
    if body.memory_ids.len() > state.limits.max_batch_ids {
        return Err(ValidationError::new(
            "memory_ids",
            format!(
                "lists {} ids; at most {} per call",
                body.memory_ids.len(),
                state.limits.max_batch_ids
            ),
        )
        .into());
    }
    let mut ids: Vec<MemoryId> = Vec::with_capacity(body.memory_ids.len());
    for (i, raw) in body.memory_ids.iter().enumerate() {
        let id = MemoryId::parse_field(raw, &format!("memory_ids[{i}]"))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut memories = state.store.memories(&tenant, &ids).await?;
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !memories.iter().any(|m| m.id == **id))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::not_found(format!(
            "memories not found: {}; search for them first to get current ids",
            missing.join(", ")
        )));
    }
    let truncated = bound(&mut memories, &state.limits, json_size);
    let answer = MemoriesAnswer {
        count: memories.len(),
        memories,
        truncated,
    };
    state.cpu.json(&tenant, answer).await
}

/// How many memories a page holds when the caller does not say.
const DEFAULT_PAGE_SIZE: usize = 20;

/// `GET /memories?limit=&cursor=&tag=`: a page of the tenant's memories, newest first. The
/// cursor names the last memory of the previous page (its creation time and id), so pages stay
/// stable while memories are added.
pub async fn list_memories(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<JsonBody, ApiError> {
    let max = state.limits.max_result_memories.max(1);
    let limit = match query.limit {
        None => DEFAULT_PAGE_SIZE.min(max),
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ValidationError::new("limit", format!("must be between 1 and {max}, got {n}"))
            })?,
    };
    let before = match query.cursor.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(cursor) => Some(parse_cursor(cursor)?),
    };
    let tag = query
        .tag
        .map(|tag| tag.trim().to_lowercase())
        .filter(|tag| !tag.is_empty());
    let listing = MemoryListing { tag, before, limit };
    let mut memories = state.store.list_memories(&tenant, &listing).await?;
    let full = memories.len() == limit;
    let cut = bound(&mut memories, &state.limits, json_size);
    let next_cursor = if full || cut {
        memories.last().map(|m| page_cursor(m.created_at, m.id))
    } else {
        None
    };
    let answer = MemoryPage {
        count: memories.len(),
        memories,
        next_cursor,
    };
    state.cpu.json(&tenant, answer).await
}

/// A page's cursor: the last memory's creation time (Unix microseconds) and id.
fn page_cursor(created_at: chrono::DateTime<chrono::Utc>, id: MemoryId) -> String {
    format!("{}_{id}", created_at.timestamp_micros())
}

fn parse_cursor(raw: &str) -> Result<(chrono::DateTime<chrono::Utc>, MemoryId), ApiError> {
    let invalid = || {
        ApiError::from(ValidationError::new(
            "cursor",
            "is not a cursor this API gave: pass the previous page's `next_cursor` as it was, \
             or leave it out for the first page",
        ))
    };
    let (micros, id) = raw.split_once('_').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let time = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let id = MemoryId::parse_field(id, "cursor").map_err(|_| invalid())?;
    Ok((time, id))
}

/// `GET /memories/{memory_id}`: one memory.
pub async fn get_memory(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(memory_id): ApiPath<String>,
) -> Result<JsonBody, ApiError> {
    let id = MemoryId::parse_field(&memory_id, "memory_id")?;
    let memory = load_memory(&state, &tenant, id, "memory_id").await?;
    state.cpu.json(&tenant, memory).await
}

/// `PUT /memories/{memory_id}`: new content, tags or observation time; a content change is
/// kept in `evolution_history`.
pub async fn update_memory(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(memory_id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateRequest>,
) -> Result<JsonBody, ApiError> {
    let id = MemoryId::parse_field(&memory_id, "memory_id")?;
    let patch = MemoryPatch::parse(
        body.content.as_deref(),
        body.tags.map(TagsInput::into_list),
        body.observed_at.as_deref(),
        chrono::Utc::now(),
        &state.limits,
    )?;
    let content = match patch.content {
        Some(content) => {
            let embedding = state
                .semantic
                .embed_or_later(&tenant, content.clone(), "updated content")
                .await?;
            // Normalising and scanning up to 64 KB of text: the tenant's CPU, not the runtime's.
            let (content, content_hash, keywords) = state
                .cpu
                .run(&tenant, move || {
                    let hash = content_hash(&content);
                    let words = keywords(&content, KEYWORDS_PER_MEMORY);
                    (content, hash, words)
                })
                .await?;
            Some(PreparedContent {
                content_hash,
                keywords,
                content,
                embedding,
            })
        }
        None => None,
    };
    let change = MemoryChange {
        content,
        tags: patch.tags,
        observed_at: patch.observed_at,
    };
    let memory = state
        .store
        .update_memory(&tenant, id, change, &state.limits)
        .await?;
    state.cpu.json(&tenant, memory).await
}

/// `DELETE /memories/bulk`: by id (which wins), or by tags (all must be present) and/or
/// category. A call with no filter is refused: nothing deletes a whole tenant by accident.
pub async fn delete_memories(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<ApiJson<DeleteAnswer>, ApiError> {
    let present = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let selector = if let Some(raw) = present(&query.memory_id) {
        DeleteSelector::Id(required_id(Some(&raw), "memory_id")?)
    } else {
        let tags: Vec<String> = present(&query.tags)
            .map(|t| {
                TagsInput::Text(t)
                    .into_list()
                    .into_iter()
                    .map(|t| t.to_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        let category = present(&query.category).map(|c| c.to_lowercase());
        if tags.is_empty() && category.is_none() {
            return Err(ApiError::bad_request(
                "refusing to delete without a filter: give memory_id, tags (comma-separated, all \
                 must match) or category",
            ));
        }
        DeleteSelector::Filter { tags, category }
    };
    let deleted = state.store.delete_memories(&tenant, &selector).await?;
    Ok(ApiJson(DeleteAnswer {
        status: "deleted".to_owned(),
        deleted_count: deleted.len(),
        memory_ids: deleted,
    }))
}
