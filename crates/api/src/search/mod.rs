//! Search below the HTTP handler: [`run`] takes a validated [`SearchQuery`] and answers the
//! contract's [`SearchAnswer`]; the handler (`routes/search.rs`) only parses the body into the
//! query, calls it and serialises the answer.
//!
//! The steps: hybrid ranking over the tenant's index ([`rank`]: BM25 fused with dense similarity
//! by relative scores, tag filters applied before ranking), the ranked memories loaded while
//! the answer's byte budget lasts, their related memories from the graph, and links whose
//! description matches the query better than either end ([`assemble`]). The CPU-heavy steps
//! run in the tenant's share of the CPU pool, never on the runtime threads.

mod assemble;
mod rank;

use std::collections::HashMap;
use std::time::Instant;

use membrain_contract::search::{SearchAnswer, SearchResult};
use membrain_memory::graph::Edge;
use membrain_memory::{Memory, MemoryBrief, MemoryId, TagFilter, TenantId};

use self::assemble::{edge_score, load_within_budget, matching_edges, memory_nodes};
pub use self::rank::{ObservedWindow, Ranking};
use self::rank::{RankRequest, rank, similarity};
use crate::error::ApiError;
use crate::routes::{bound, json_size};
use crate::semantic::enrich::interpret;
use crate::server::AppState;

/// Neighbours shown under each result.
const RELATED_PER_RESULT: usize = 5;
/// Memories loaded per query while an answer's byte budget lasts.
const LOAD_CHUNK: usize = 10;

/// A search, validated: what [`run`] answers.
#[derive(Debug)]
pub struct SearchQuery {
    /// The question, trimmed; empty only with `full_scope`.
    pub query: String,
    /// 1 to 100.
    pub k: usize,
    pub format: ResponseFormat,
    pub ranking: Ranking,
    /// The tag filter, compiled (in the tenant's CPU share when it holds patterns).
    pub filter: TagFilter,
    /// List every memory in scope after the ranked ones.
    pub full_scope: bool,
    /// Only memories observed within it.
    pub observed: ObservedWindow,
}

/// Whether the answer carries a summary written by the language model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Raw,
    Interpreted,
    Both,
}

/// Answers `request` for `tenant`.
pub async fn run(
    state: &AppState,
    tenant: &TenantId,
    request: SearchQuery,
) -> Result<SearchAnswer, ApiError> {
    let SearchQuery {
        query,
        k,
        format,
        ranking,
        filter,
        full_scope,
        observed,
    } = request;
    let query = query.as_str();
    let limits = &state.limits;
    // The query's vector (the model, on a blocking thread) and the index catch-up (the
    // database) run side by side.
    let semantic = &state.semantic;
    let wants_vector = !query.is_empty() && ranking != Ranking::Lexical;
    // Timed by phase for `membrain_search_duration_seconds`: embed (the query vector), rank
    // (the index brought up to date, then ranking), load (memories, neighbours, edges, answer).
    let (vector, (index, caught_up)) = tokio::join!(
        async {
            if wants_vector {
                let started = Instant::now();
                let vector = semantic.embed_query(tenant, query).await;
                record_phase("embed", started);
                Some(vector)
            } else {
                None
            }
        },
        async {
            let started = Instant::now();
            let index = semantic.indexes.current(state.store.as_ref(), tenant).await;
            (index, started.elapsed())
        },
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
        full_scope,
        max_results: limits.max_result_memories,
        time: membrain_memory::when::time_span(query, chrono::Utc::now()),
        observed,
    };
    // The index's read guard is let go as soon as ranking is done: held while this search waits
    // for the CPU again, it would keep the tenant's ingest worker (which updates the index)
    // waiting too. Ranking a heavy tenant's filters runs at low priority like the rest of its
    // work: only its own worker waits for its index, as the other workers serve other tenants
    // meanwhile (`IngestTeam`).
    let ranking_started = Instant::now();
    let (filter, ranked, similarities, mut truncated) = state
        .cpu
        .run(tenant, move || {
            let (ranked, truncated) = rank(&index.index, &filter, &request);
            let similarities: HashMap<MemoryId, f32> = ranked
                .iter()
                .filter_map(|r| Some((r.id, similarity(&index, request.vector.as_deref(), r.id)?)))
                .collect();
            (filter, ranked, similarities, truncated)
        })
        .await?;
    metrics::histogram!("membrain_search_duration_seconds", "phase" => "rank")
        .record((caught_up + ranking_started.elapsed()).as_secs_f64());
    let loading_started = Instant::now();
    let ids: Vec<MemoryId> = ranked.iter().map(|r| r.id).collect();
    let (budget, store, asker) = (state.limits.max_result_bytes, &state.store, tenant);
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
        .run(tenant, move || {
            let mut memories = memories;
            let cut = bound(&mut memories, &shared_limits, json_size::<Memory>);
            (memories, cut)
        })
        .await?;
    truncated |= cut;
    let scores: HashMap<MemoryId, f32> = ranked.iter().map(|r| (r.id, r.score)).collect();

    let mut neighbours = load_neighbours(state, tenant, &memories).await?;
    // A scoped search stays inside its scope: neighbours outside it are neither shown as
    // related memories nor as edge ends.
    if !filter.is_empty() {
        neighbours.retain(|_, memory| filter.matches(&memory.tags));
    }
    let mut edges = Vec::new();
    if !query.is_empty() && !memories.is_empty() {
        let from_results = state.store.edges_from(tenant, &ids).await?;
        let model = semantic.model_id();
        // A few cosines for the edges' ends, under a read guard held only while they are made;
        // the index was brought up to date by this search already.
        let index = match semantic.indexes.as_held(tenant).await {
            Some(index) => index,
            None => {
                semantic
                    .indexes
                    .current(state.store.as_ref(), tenant)
                    .await?
            }
        };
        let similar = |id| similarity(&index, vector.as_deref(), id);
        let scored_edges: Vec<(f32, Edge)> = from_results
            .into_iter()
            .filter_map(|edge| {
                let score = edge_score(&edge, query, vector.as_deref(), model, similar)?;
                Some((score, edge))
            })
            .collect();
        drop(index);
        edges = matching_edges(
            state,
            tenant,
            scored_edges,
            &memories,
            &neighbours,
            &filter,
            k,
        )
        .await?;
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
    let answer = state
        .cpu
        .run(tenant, move || {
            let mut results = memory_nodes(memories, &neighbours, &scores, |id| {
                similarities.get(&id).copied()
            });
            results.extend(edges);
            // The answer's size counts everything serialised: related memories and edges too.
            truncated |= bound(&mut results, &shared_limits, json_size::<SearchResult>);
            let (interpreted, interpreted_error) = match interpreted {
                None => (None, None),
                Some(Ok(text)) => (Some(Some(text)), None),
                Some(Err(message)) => (Some(None), Some(message)),
            };
            SearchAnswer {
                count: results.len(),
                results,
                truncated,
                notices,
                interpreted,
                interpreted_error,
            }
        })
        .await?;
    record_phase("load", loading_started);
    Ok(answer)
}

fn record_phase(phase: &'static str, started: Instant) {
    metrics::histogram!("membrain_search_duration_seconds", "phase" => phase)
        .record(started.elapsed().as_secs_f64());
}

/// The briefs of the memories linked from the results, in the results' order, while the
/// answer's byte budget lasts (the results' own texts count against it first).
async fn load_neighbours(
    state: &AppState,
    tenant: &TenantId,
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
