//! `POST /memories/search`: tag filters, lexical ranking, related memories and matching edges.

use std::collections::HashMap;

use axum::extract::State;
use membrain_memory::lexical::{rank_bm25, term_overlap};
use membrain_memory::tag_filter::TagFilterInput;
use membrain_memory::{Memory, MemoryId, TagFilter, ValidationError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::memories::TagsInput;
use super::{bound, memory_size};
use crate::error::ApiError;
use crate::extract::{ApiJson, Tenant};
use crate::server::AppState;

const MAX_QUERY_BYTES: usize = 4096;
/// Neighbours shown under each result.
const RELATED_PER_RESULT: usize = 5;

#[derive(Debug, Deserialize)]
pub struct SearchBody {
    #[serde(default)]
    query: String,
    #[serde(default = "default_k")]
    k: i64,
    #[serde(default)]
    response_format: Option<String>,
    keyword_filter: Option<TagsInput>,
    scope_regex: Option<String>,
    scope: Option<Vec<String>>,
    /// Accepted for compatibility; lexical ranking has no second stage to re-rank with yet.
    #[serde(default)]
    #[allow(dead_code)]
    rerank: bool,
    /// List every memory in scope (ranked ones first), not only the best `k`.
    #[serde(default)]
    full_scope: bool,
}

fn default_k() -> i64 {
    5
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseFormat {
    Raw,
    Interpreted,
    Both,
}

fn parse_format(raw: Option<&str>) -> Result<ResponseFormat, ValidationError> {
    match raw.map(|f| f.trim().to_lowercase()).as_deref() {
        None | Some("") | Some("raw") => Ok(ResponseFormat::Raw),
        Some("interpreted") => Ok(ResponseFormat::Interpreted),
        Some("both") => Ok(ResponseFormat::Both),
        Some(other) => Err(ValidationError::new(
            "response_format",
            format!("{other:?} is not one of \"raw\", \"interpreted\", \"both\""),
        )),
    }
}

pub async fn search_memories(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<ApiJson<Value>, ApiError> {
    let limits = &state.limits;
    if !(1..=100).contains(&body.k) {
        return Err(ValidationError::new(
            "k",
            format!("must be between 1 and 100, got {}", body.k),
        )
        .into());
    }
    let k = body.k as usize;
    let format = parse_format(body.response_format.as_deref())?;
    let query = body.query.trim();
    if query.is_empty() && !body.full_scope {
        return Err(ValidationError::new(
            "query",
            "must not be empty: ask in natural language, e.g. \"What drinks does the user like?\"",
        )
        .into());
    }
    if query.len() > MAX_QUERY_BYTES {
        return Err(ValidationError::new(
            "query",
            format!("is longer than {MAX_QUERY_BYTES} bytes"),
        )
        .into());
    }
    let filter = TagFilter::parse(
        TagFilterInput {
            keyword_filter: body
                .keyword_filter
                .map(keyword_filter_list)
                .unwrap_or_default(),
            scope_regex: body.scope_regex.filter(|s| !s.trim().is_empty()),
            scope: body.scope.unwrap_or_default(),
        },
        limits.max_regex_bytes,
    )?;

    let (mut candidates, mut truncated) = state
        .store
        .search_candidates(&tenant, limits.max_search_candidates)
        .await?;
    if !filter.is_empty() {
        candidates.retain(|c| filter.matches(&c.tags));
    }
    let documents: Vec<String> = candidates
        .iter()
        .map(|c| format!("{} {}", c.content, c.tags.join(" ")))
        .collect();
    let document_refs: Vec<&str> = documents.iter().map(String::as_str).collect();
    let mut ranked: Vec<(MemoryId, f32)> = rank_bm25(query, &document_refs, k)
        .into_iter()
        .map(|r| (candidates[r.index].id, r.score))
        .collect();
    if body.full_scope {
        let listed: Vec<MemoryId> = ranked.iter().map(|(id, _)| *id).collect();
        ranked.extend(
            candidates
                .iter()
                .filter(|c| !listed.contains(&c.id))
                .map(|c| (c.id, 0.0)),
        );
        if ranked.len() > limits.max_result_memories {
            ranked.truncate(limits.max_result_memories);
            truncated = true;
        }
    }

    let ids: Vec<MemoryId> = ranked.iter().map(|(id, _)| *id).collect();
    let mut memories = state.store.memories(&tenant, &ids).await?;
    truncated |= bound(&mut memories, limits, memory_size);
    let scores: HashMap<MemoryId, f32> = ranked.into_iter().collect();

    let mut neighbours = load_neighbours(&state, &tenant, &memories).await?;
    // A scoped search stays inside its scope: neighbours outside it are neither shown as
    // related memories nor as edge ends.
    if !filter.is_empty() {
        neighbours.retain(|_, memory| filter.matches(&memory.tags));
    }
    let mut results: Vec<Value> = memories
        .iter()
        .map(|memory| {
            let related: Vec<Value> = memory
                .links
                .iter()
                .filter_map(|link| {
                    let other = neighbours.get(&link.memory_id)?;
                    Some(json!({
                        "id": other.id,
                        "content": other.content,
                        "tags": other.tags,
                        "relationship": link.description,
                    }))
                })
                .take(RELATED_PER_RESULT)
                .collect();
            let mut node = json!(memory);
            node["type"] = json!("memory_node");
            node["semantic_score"] = json!(scores.get(&memory.id).copied().unwrap_or(0.0));
            node["related_memories"] = json!(related);
            node
        })
        .collect();
    if !query.is_empty() {
        results.extend(matching_edges(query, &memories, &neighbours, k));
    }

    let mut answer = json!({ "count": results.len(), "results": results, "truncated": truncated });
    if format != ResponseFormat::Raw {
        answer["interpreted"] = Value::Null;
        answer["interpreted_error"] = json!(
            "no language model is configured on this server, so there is no interpreted summary; \
             the raw results are included: use response_format \"raw\" to skip this notice"
        );
    }
    Ok(ApiJson(answer))
}

fn keyword_filter_list(input: TagsInput) -> Vec<String> {
    match input {
        TagsInput::List(list) => list,
        // A single string is one regex (it may contain commas), not a comma list.
        TagsInput::Text(one) => vec![one],
    }
}

/// The memories linked from the results, loaded once for all of them.
async fn load_neighbours(
    state: &AppState,
    tenant: &membrain_memory::TenantId,
    memories: &[Memory],
) -> Result<HashMap<MemoryId, Memory>, ApiError> {
    let mut wanted: Vec<MemoryId> = Vec::new();
    for memory in memories {
        for link in memory.links.iter().take(RELATED_PER_RESULT) {
            if !wanted.contains(&link.memory_id) {
                wanted.push(link.memory_id);
            }
        }
    }
    let loaded = state.store.memories(tenant, &wanted).await?;
    Ok(loaded.into_iter().map(|m| (m.id, m)).collect())
}

/// Links of the results whose descriptions speak of the query, best first, as
/// `relationship_edge` results.
fn matching_edges(
    query: &str,
    memories: &[Memory],
    neighbours: &HashMap<MemoryId, Memory>,
    k: usize,
) -> Vec<Value> {
    let by_id: HashMap<MemoryId, &Memory> = memories
        .iter()
        .map(|m| (m.id, m))
        .chain(neighbours.iter().map(|(id, m)| (*id, m)))
        .collect();
    let mut edges: Vec<(f32, &Memory, &Memory, &str)> = Vec::new();
    let mut seen: Vec<(MemoryId, MemoryId)> = Vec::new();
    for memory in memories {
        for link in &memory.links {
            let key = if memory.id < link.memory_id {
                (memory.id, link.memory_id)
            } else {
                (link.memory_id, memory.id)
            };
            let score = term_overlap(query, &link.description);
            if score <= 0.0 || seen.contains(&key) {
                continue;
            }
            if let Some(target) = by_id.get(&link.memory_id) {
                seen.push(key);
                edges.push((score, memory, target, &link.description));
            }
        }
    }
    edges.sort_by(|a, b| b.0.total_cmp(&a.0));
    edges
        .into_iter()
        .take(k)
        .map(|(score, source, target, description)| {
            json!({
                "type": "relationship_edge",
                "score": score,
                "description": description,
                "source": edge_end(source),
                "target": edge_end(target),
            })
        })
        .collect()
}

fn edge_end(memory: &Memory) -> Value {
    json!({
        "id": memory.id,
        "content": memory.content,
        "context": memory.context,
        "tags": memory.tags,
        "keywords": memory.keywords,
    })
}
