//! `POST /memories/search`: hybrid ranking (BM25 fused with dense similarity by relative
//! scores), tag filters applied before ranking, related memories from the graph, and links whose
//! description matches the query better than either end.

use std::collections::HashMap;

use axum::extract::State;
use membrain_index::{Scored, TenantIndex, fuse_relative};
use membrain_memory::embedding::cosine;
use membrain_memory::graph::Edge;
use membrain_memory::lexical::term_overlap;
use membrain_memory::tag_filter::TagFilterInput;
use membrain_memory::{Memory, MemoryBrief, MemoryId, TagFilter, ValidationError};
use membrain_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::memories::TagsInput;
use super::{bound, json_size};
use crate::error::ApiError;
use crate::extract::{ApiJson, JsonBody, Tenant};
use crate::semantic::SyncedIndex;
use crate::semantic::enrich::interpret;
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
    /// Accepted for compatibility: hybrid ranking is always on.
    #[serde(default)]
    #[allow(dead_code)]
    rerank: bool,
    /// `hybrid` (default), `lexical` (BM25 only) or `dense` (vectors only).
    ranking: Option<String>,
    /// List every memory in scope (ranked ones first), not only the best `k`.
    #[serde(default)]
    full_scope: bool,
}

fn default_k() -> i64 {
    5
}

/// Candidates each ranker hands to fusion, at least: the dense scores are rescaled within this
/// pool, so it stays fixed for every k up to it.
const FUSION_POOL: usize = 50;
/// The lexical share of the fused score (the dense share is the rest). Chosen on LoCoMo
/// (`benches/locomo.rs --dump`): recall@10 0.69–0.70 for 0.5–0.65, against 0.61–0.68 for
/// reciprocal-rank fusion at any constant, and 0.65 / 0.50 for lexical / dense alone.
const LEXICAL_WEIGHT: f32 = 0.6;
/// An edge is a result only when its description is at least this similar to the query.
const EDGE_MIN_SIMILARITY: f32 = 0.3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ranking {
    Hybrid,
    Lexical,
    Dense,
}

fn parse_ranking(raw: Option<&str>) -> Result<Ranking, ValidationError> {
    match raw.map(|f| f.trim().to_lowercase()).as_deref() {
        None | Some("") | Some("hybrid") => Ok(Ranking::Hybrid),
        Some("lexical") | Some("bm25") => Ok(Ranking::Lexical),
        Some("dense") | Some("semantic") => Ok(Ranking::Dense),
        Some(other) => Err(ValidationError::new(
            "ranking",
            format!("{other:?} is not one of \"hybrid\", \"lexical\", \"dense\""),
        )),
    }
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
) -> Result<JsonBody, ApiError> {
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
    let ranking = parse_ranking(body.ranking.as_deref())?;
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
    let filter_input = TagFilterInput {
        keyword_filter: body
            .keyword_filter
            .map(keyword_filter_list)
            .unwrap_or_default(),
        scope_regex: body.scope_regex.filter(|s| !s.trim().is_empty()),
        scope: body.scope.unwrap_or_default(),
    };
    // Compiling the patterns (each a regex, as many as the limits allow) is CPU work as heavy
    // as ranking with them: it runs in the tenant's share of the pool, at its priority, never
    // on the runtime threads every tenant's requests share. No patterns, no trip to the pool.
    let filter = if filter_input.keyword_filter.is_empty() && filter_input.scope_regex.is_none() {
        TagFilter::parse(filter_input, limits)?
    } else {
        let filter_limits = limits.clone();
        state
            .cpu
            .run(&tenant, move || {
                TagFilter::parse(filter_input, &filter_limits)
            })
            .await??
    };

    // The query's vector (the model, on a blocking thread) and the index catch-up (the
    // database) run side by side.
    let semantic = &state.semantic;
    let wants_vector = !query.is_empty() && ranking != Ranking::Lexical;
    let (vector, index) = tokio::join!(
        async {
            if wants_vector {
                Some(semantic.embed_query(&tenant, query).await)
            } else {
                None
            }
        },
        semantic.indexes.current(state.store.as_ref(), &tenant),
    );
    let index = index?;
    let mut notices: Vec<String> = Vec::new();
    let vector = match vector {
        Some(Ok(vector)) => Some(vector),
        Some(Err(membrain_embed::EmbedError::Busy(why))) => {
            notices.push(format!("{why}; these results are lexical only"));
            None
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "could not embed a query; ranking lexically");
            notices.push(
                "semantic ranking is unavailable right now; these results are lexical only"
                    .to_owned(),
            );
            None
        }
        None => None,
    };
    // Ranking reads every candidate (and runs the caller's regexes over their tags): CPU work,
    // done on a blocking thread of the tenant's fair share of the pool, never on the runtime.
    let request = RankRequest {
        query: query.to_owned(),
        vector: vector.clone(),
        ranking,
        k,
        full_scope: body.full_scope,
        max_results: limits.max_result_memories,
    };
    // The index's read guard is let go as soon as ranking is done: held while this search waits
    // for the CPU again, it would keep the tenant's ingest worker (which updates the index)
    // waiting too. Ranking a heavy tenant's filters runs at low priority like the rest of its
    // work: only its own worker waits for its index, as the other workers serve other tenants
    // meanwhile (`IngestTeam`).
    let (filter, ranked, similarities, mut truncated) = state
        .cpu
        .run(&tenant, move || {
            let (ranked, truncated) = rank(&index.index, &filter, &request);
            let similarities: HashMap<MemoryId, f32> = ranked
                .iter()
                .filter_map(|r| Some((r.id, similarity(&index, request.vector.as_deref(), r.id)?)))
                .collect();
            (filter, ranked, similarities, truncated)
        })
        .await?;
    let ids: Vec<MemoryId> = ranked.iter().map(|r| r.id).collect();
    let (budget, store, asker) = (state.limits.max_result_bytes, &state.store, &tenant);
    let memories = load_within_budget(
        &ids,
        LOAD_CHUNK,
        budget,
        Memory::text_bytes,
        |chunk| async move { store.memories(asker, &chunk).await },
    )
    .await?;
    // Measuring, copying into JSON and serialising up to k memories (each with its history) is
    // CPU work as heavy as ranking: it runs in the tenant's share of the pool too, never on the
    // runtime threads every tenant's requests share.
    let shared_limits = state.limits.clone();
    let (memories, cut) = state
        .cpu
        .run(&tenant, move || {
            let mut memories = memories;
            let cut = bound(&mut memories, &shared_limits, json_size::<Memory>);
            (memories, cut)
        })
        .await?;
    truncated |= cut;
    let scores: HashMap<MemoryId, f32> = ranked.iter().map(|r| (r.id, r.score)).collect();

    let mut neighbours = load_neighbours(&state, &tenant, &memories).await?;
    // A scoped search stays inside its scope: neighbours outside it are neither shown as
    // related memories nor as edge ends.
    if !filter.is_empty() {
        neighbours.retain(|_, memory| filter.matches(&memory.tags));
    }
    let (memories, neighbours, mut results) = state
        .cpu
        .run(&tenant, move || {
            let results = memory_nodes(&memories, &neighbours, &scores, |id| {
                similarities.get(&id).copied()
            });
            (memories, neighbours, results)
        })
        .await?;
    if !query.is_empty() && !memories.is_empty() {
        let edges = state.store.edges_from(&tenant, &ids).await?;
        let model = semantic.model_id();
        // A few cosines for the edges' ends, under a read guard held only while they are made;
        // the index was brought up to date by this search already.
        let index = match semantic.indexes.as_held(&tenant).await {
            Some(index) => index,
            None => {
                semantic
                    .indexes
                    .current(state.store.as_ref(), &tenant)
                    .await?
            }
        };
        let similar = |id| similarity(&index, vector.as_deref(), id);
        let scored_edges: Vec<(f32, Edge)> = edges
            .into_iter()
            .filter_map(|edge| {
                let score = match (
                    &vector,
                    edge.embedding.as_ref().and_then(|e| e.for_model(model)),
                ) {
                    (Some(query_vector), Some(edge_vector)) => {
                        let score = cosine(query_vector, edge_vector);
                        let ends = similar(edge.from)
                            .unwrap_or(0.0)
                            .max(similar(edge.to).unwrap_or(0.0));
                        (score >= EDGE_MIN_SIMILARITY && score > ends).then_some(score)?
                    }
                    _ => Some(term_overlap(query, &edge.description)).filter(|s| *s > 0.0)?,
                };
                Some((score, edge))
            })
            .collect();
        drop(index);
        results.extend(
            matching_edges(
                &state,
                &tenant,
                scored_edges,
                &memories,
                &neighbours,
                &filter,
                k,
            )
            .await?,
        );
    }

    // The summary, when asked for, is written from the memories the answer keeps.
    let interpreted: Option<Result<String, String>> = match (format, semantic.llm()) {
        (ResponseFormat::Raw, _) => None,
        (_, Some(llm)) => {
            let contents: Vec<&str> = memories.iter().map(|m| m.content.as_str()).collect();
            Some(interpret(llm, query, &contents).await)
        }
        (_, None) => Some(Err(
            "no language model is configured on this server (start it with --llm-url), so \
             there is no interpreted summary; the raw results are included: use \
             response_format \"raw\" to skip this notice"
                .to_owned(),
        )),
    };
    let shared_limits = state.limits.clone();
    let body = state
        .cpu
        .run(&tenant, move || {
            // The answer's size counts everything serialised: related memories and edges too.
            truncated |= bound(&mut results, &shared_limits, json_size::<Value>);
            let mut answer =
                json!({ "count": results.len(), "results": results, "truncated": truncated });
            if !notices.is_empty() {
                answer["notices"] = json!(notices);
            }
            match interpreted {
                None => {}
                Some(Ok(text)) => answer["interpreted"] = json!(text),
                Some(Err(message)) => {
                    answer["interpreted"] = Value::Null;
                    answer["interpreted_error"] = json!(message);
                }
            }
            serde_json::to_vec(&answer)
        })
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    Ok(JsonBody(body))
}

/// Memories loaded per query while an answer's byte budget lasts.
const LOAD_CHUNK: usize = 10;

/// The items of `ids` that `load` finds, in order, loaded `chunk` at a time until their texts
/// pass `budget` bytes: what is past it would be cut by the answer's bound anyway, and a tenant
/// whose memories are long (or carry long histories) would otherwise have every one of them
/// read and parsed per search.
async fn load_within_budget<T, Loaded>(
    ids: &[MemoryId],
    chunk: usize,
    budget: usize,
    text_bytes: impl Fn(&T) -> usize,
    load: impl Fn(Vec<MemoryId>) -> Loaded,
) -> Result<Vec<T>, ApiError>
where
    Loaded: std::future::Future<Output = Result<Vec<T>, StoreError>>,
{
    let mut loaded = Vec::with_capacity(ids.len());
    let mut bytes = 0usize;
    for ids in ids.chunks(chunk) {
        let items = load(ids.to_vec()).await?;
        bytes = items
            .iter()
            .fold(bytes, |total, item| total.saturating_add(text_bytes(item)));
        loaded.extend(items);
        if bytes > budget {
            break;
        }
    }
    Ok(loaded)
}

/// The cosine similarity of the query and a memory, when both have vectors.
fn similarity(index: &SyncedIndex, vector: Option<&[f32]>, id: MemoryId) -> Option<f32> {
    Some(cosine(vector?, index.index.vector(id)?))
}

/// The answer's memory nodes, each with its scores and up to [`RELATED_PER_RESULT`] related
/// memories.
fn memory_nodes(
    memories: &[Memory],
    neighbours: &HashMap<MemoryId, MemoryBrief>,
    scores: &HashMap<MemoryId, f32>,
    similarity: impl Fn(MemoryId) -> Option<f32>,
) -> Vec<Value> {
    memories
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
            let score = scores.get(&memory.id).copied().unwrap_or(0.0);
            let mut node = json!(memory);
            node["type"] = json!("memory_node");
            // The cosine similarity of query and memory; `score` is what the order follows.
            node["semantic_score"] = json!(similarity(memory.id).unwrap_or(score));
            node["score"] = json!(score);
            node["related_memories"] = json!(related);
            node
        })
        .collect()
}

/// What [`rank`] needs, owned, so it can run on a blocking thread.
struct RankRequest {
    query: String,
    vector: Option<std::sync::Arc<[f32]>>,
    ranking: Ranking,
    k: usize,
    full_scope: bool,
    max_results: usize,
}

/// The ranked ids (and whether the full-scope list was cut): lexical and dense candidates that
/// pass the filter, fused; with `full_scope`, every other memory in scope after them.
fn rank(index: &TenantIndex, filter: &TagFilter, request: &RankRequest) -> (Vec<Scored>, bool) {
    let matcher = filter.matcher();
    let accept = |tags: &[String]| matcher.matches(tags);
    let RankRequest {
        query,
        vector,
        ranking,
        k,
        ..
    } = request;
    let (ranking, k) = (*ranking, *k);
    let pool = k.max(FUSION_POOL);
    let lexical = if ranking == Ranking::Dense && vector.is_some() || query.is_empty() {
        Vec::new()
    } else {
        index.lexical(query, &accept, pool)
    };
    let dense = match vector {
        Some(v) if ranking != Ranking::Lexical => index.dense(v, &accept, pool, -1.0),
        _ => Vec::new(),
    };
    let mut ranked: Vec<Scored> = match ranking {
        Ranking::Hybrid => fuse_relative(&lexical, &dense, LEXICAL_WEIGHT, k),
        Ranking::Dense if vector.is_some() => dense.into_iter().take(k).collect(),
        Ranking::Lexical | Ranking::Dense => lexical.into_iter().take(k).collect(),
    };
    let mut truncated = false;
    if request.full_scope {
        let listed: std::collections::HashSet<MemoryId> = ranked.iter().map(|r| r.id).collect();
        let mut rest: Vec<MemoryId> = index
            .ids()
            .filter(|id| !listed.contains(id))
            .filter(|id| index.tags(*id).is_some_and(accept))
            .collect();
        // Newest first (ids are time-ordered).
        rest.sort_unstable_by(|a, b| b.cmp(a));
        ranked.extend(rest.into_iter().map(|id| Scored { id, score: 0.0 }));
        if ranked.len() > request.max_results {
            ranked.truncate(request.max_results);
            truncated = true;
        }
    }
    (ranked, truncated)
}

fn keyword_filter_list(input: TagsInput) -> Vec<String> {
    match input {
        TagsInput::List(list) => list,
        // A single string is one regex (it may contain commas), not a comma list.
        TagsInput::Text(one) => vec![one],
    }
}

/// The briefs of the memories linked from the results, in the results' order, while the
/// answer's byte budget lasts (the results' own texts count against it first).
async fn load_neighbours(
    state: &AppState,
    tenant: &membrain_memory::TenantId,
    memories: &[Memory],
) -> Result<HashMap<MemoryId, MemoryBrief>, ApiError> {
    let mut wanted: Vec<MemoryId> = Vec::new();
    for memory in memories {
        for link in memory.links.iter().take(RELATED_PER_RESULT) {
            if !wanted.contains(&link.memory_id) {
                wanted.push(link.memory_id);
            }
        }
    }
    let results_bytes: usize = memories.iter().map(Memory::text_bytes).sum();
    let budget = state.limits.max_result_bytes.saturating_sub(results_bytes);
    let (chunk, store) = (LOAD_CHUNK * RELATED_PER_RESULT, &state.store);
    let loaded = load_within_budget(
        &wanted,
        chunk,
        budget,
        MemoryBrief::text_bytes,
        |ids| async move { store.memory_briefs(tenant, &ids).await },
    )
    .await?;
    Ok(loaded.into_iter().map(|m| (m.id, m)).collect())
}

/// The scored edges as `relationship_edge` results, best first, each once, both ends inside the
/// search's scope.
async fn matching_edges(
    state: &AppState,
    tenant: &membrain_memory::TenantId,
    mut edges: Vec<(f32, Edge)>,
    memories: &[Memory],
    neighbours: &HashMap<MemoryId, MemoryBrief>,
    filter: &TagFilter,
    k: usize,
) -> Result<Vec<Value>, ApiError> {
    edges.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut seen: std::collections::HashSet<(MemoryId, MemoryId)> = Default::default();
    edges.retain(|(_, e)| seen.insert((e.from.min(e.to), e.from.max(e.to))));
    edges.truncate(k);
    let mut by_id: HashMap<MemoryId, EdgeEnd<'_>> = memories
        .iter()
        .map(|m| (m.id, EdgeEnd::from(m)))
        .chain(neighbours.values().map(|m| (m.id, EdgeEnd::from(m))))
        .collect();
    let missing: Vec<MemoryId> = edges
        .iter()
        .map(|(_, e)| e.to)
        .filter(|id| !by_id.contains_key(id))
        .collect();
    let loaded = state.store.memory_briefs(tenant, &missing).await?;
    by_id.extend(loaded.iter().map(|m| (m.id, EdgeEnd::from(m))));
    Ok(edges
        .iter()
        .filter_map(|(score, edge)| {
            let source = by_id.get(&edge.from)?;
            let target = by_id.get(&edge.to)?;
            let in_scope = |m: &EdgeEnd| filter.is_empty() || filter.matches(m.tags);
            if !(in_scope(source) && in_scope(target)) {
                return None;
            }
            Some(json!({
                "type": "relationship_edge",
                "score": score,
                "description": edge.description,
                "source": source,
                "target": target,
            }))
        })
        .collect())
}

/// A relationship edge's end as the answer shows it, borrowed from a result or a brief.
#[derive(Serialize)]
struct EdgeEnd<'a> {
    id: MemoryId,
    content: &'a str,
    context: &'a str,
    tags: &'a [String],
    keywords: &'a [String],
}

impl<'a> From<&'a Memory> for EdgeEnd<'a> {
    fn from(memory: &'a Memory) -> Self {
        Self {
            id: memory.id,
            content: &memory.content,
            context: &memory.context,
            tags: &memory.tags,
            keywords: &memory.keywords,
        }
    }
}

impl<'a> From<&'a MemoryBrief> for EdgeEnd<'a> {
    fn from(brief: &'a MemoryBrief) -> Self {
        Self {
            id: brief.id,
            content: &brief.content,
            context: &brief.context,
            tags: &brief.tags,
            keywords: &brief.keywords,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loading_stops_at_the_first_chunk_past_the_budget_and_keeps_the_order() {
        let ids: Vec<MemoryId> = (0..25).map(|_| MemoryId::new()).collect();
        let asked = std::sync::Mutex::new(Vec::new());
        // Each item is its id and 100 bytes of text; one id of the first chunk is missing.
        let missing = ids[3];
        let loaded = load_within_budget(
            &ids,
            10,
            1_500,
            |_: &MemoryId| 100,
            |chunk| {
                asked.lock().unwrap().push(chunk.len());
                async move { Ok(chunk.into_iter().filter(|id| *id != missing).collect()) }
            },
        )
        .await
        .unwrap();
        // 900 bytes after the first chunk, 1,900 after the second: the third is never read.
        assert_eq!(*asked.lock().unwrap(), [10, 10]);
        let expected: Vec<MemoryId> = ids[..20]
            .iter()
            .copied()
            .filter(|id| *id != missing)
            .collect();
        assert_eq!(loaded, expected);
    }
}
