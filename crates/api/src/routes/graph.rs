//! Links and graph walks: link, unlink, shortest path, neighbourhood, query-guided traversal.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use membrain_contract::graph::{
    EdgeView, LinkAnswer, LinkRequest, NeighborhoodAnswer, NeighborhoodQuery, PathAnswer,
    PathQuery, TraverseAnswer, TraverseQuery, VisitedMemory,
};
use membrain_embed::EmbedError;
use membrain_memory::embedding::cosine;
use membrain_memory::graph::{Edge, Walk};
use membrain_memory::{MemoryId, TagFilter, TenantId, ValidationError};

use super::{bound, json_size, load_memory, required_id};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Tenant};
use crate::server::AppState;

const MAX_DESCRIPTION_BYTES: usize = 1024;

fn two_ids(body: &LinkRequest) -> Result<(MemoryId, MemoryId), ApiError> {
    let a = required_id(body.memory_id_1.as_deref(), "memory_id_1")?;
    let b = required_id(body.memory_id_2.as_deref(), "memory_id_2")?;
    if a == b {
        return Err(ValidationError::new("memory_id_2", "must differ from memory_id_1").into());
    }
    Ok((a, b))
}

/// `POST /memories/link` (Membrain's addition): links two memories with a description.
pub async fn link_memories(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<LinkRequest>,
) -> Result<ApiJson<LinkAnswer>, ApiError> {
    let (a, b) = two_ids(&body)?;
    let description = body
        .description
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if description.is_empty() {
        return Err(ValidationError::new(
            "description",
            "must say how the memories relate, e.g. \"coffee causes the reflux\"",
        )
        .into());
    }
    if description.len() > MAX_DESCRIPTION_BYTES {
        return Err(ValidationError::new(
            "description",
            format!("is longer than {MAX_DESCRIPTION_BYTES} bytes"),
        )
        .into());
    }
    let embedding = state
        .semantic
        .embed_or_later(&tenant, description.to_owned(), "a link description")
        .await?;
    state
        .store
        .link(&tenant, a, b, description, embedding.as_ref())
        .await?;
    Ok(ApiJson(LinkAnswer {
        status: "linked".to_owned(),
        memory_id_1: a,
        memory_id_2: b,
        description: Some(description.to_owned()),
    }))
}

/// `POST /memories/unlink`.
pub async fn unlink_memories(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<LinkRequest>,
) -> Result<ApiJson<LinkAnswer>, ApiError> {
    let (a, b) = two_ids(&body)?;
    if !state.store.unlink(&tenant, a, b).await? {
        return Err(ApiError::not_found(format!(
            "no link between {a} and {b} for this API key's tenant"
        )));
    }
    Ok(ApiJson(LinkAnswer {
        status: "unlinked".to_owned(),
        memory_id_1: a,
        memory_id_2: b,
        description: None,
    }))
}

/// Drives a walk hop by hop against the store. `scope`, when given, keeps the walk inside
/// memories whose tags match; `stop` ends it early (a path found).
#[allow(clippy::too_many_arguments)] // One private helper, three callers.
async fn drive(
    state: &AppState,
    tenant: &TenantId,
    walk: &mut Walk,
    max_hops: usize,
    vectors_needed: bool,
    follow: impl Fn(&Edge) -> Option<f32>,
    scope: Option<&TagFilter>,
    stop: impl Fn(&Walk) -> bool,
) -> Result<Vec<Edge>, ApiError> {
    let mut taken = Vec::new();
    while walk.depth() < max_hops && !walk.frontier().is_empty() && !walk.truncated() && !stop(walk)
    {
        let mut edges = state.store.edges_from(tenant, walk.frontier()).await?;
        if vectors_needed {
            fill_missing_vectors(state, tenant, &mut edges).await?;
        }
        let allowed: Option<HashSet<MemoryId>> = match scope {
            Some(filter) => {
                let targets: Vec<MemoryId> = edges.iter().map(|e| e.to).collect();
                let loaded = state.store.memory_briefs(tenant, &targets).await?;
                Some(
                    loaded
                        .into_iter()
                        .filter(|m| filter.matches(&m.tags))
                        .map(|m| m.id)
                        .collect(),
                )
            }
            None => None,
        };
        let before: HashSet<MemoryId> = walk.visited().map(|(id, _)| id).collect();
        walk.advance(&edges, |edge| {
            if allowed.as_ref().is_some_and(|a| !a.contains(&edge.to)) {
                return None;
            }
            follow(edge)
        });
        taken.extend(edges.into_iter().filter(|e| {
            !before.contains(&e.to)
                && walk.visited().any(|(id, visit)| {
                    id == e.to && visit.via.as_ref().is_some_and(|(from, _)| *from == e.from)
                })
        }));
    }
    Ok(taken)
}

/// Edges whose description has no vector of the current model yet (made before the model
/// changed, or while the embedder failed) get one now, so traversal never skips them.
async fn fill_missing_vectors(
    state: &AppState,
    tenant: &TenantId,
    edges: &mut [Edge],
) -> Result<(), ApiError> {
    let model = state.semantic.model_id();
    let missing: Vec<usize> = (0..edges.len())
        .filter(|i| {
            edges[*i]
                .embedding
                .as_ref()
                .and_then(|e| e.for_model(model))
                .is_none()
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let texts = missing
        .iter()
        .map(|i| edges[*i].description.clone())
        .collect();
    let vectors = state
        .semantic
        .embed(tenant, texts)
        .await
        .map_err(traversal_embed_error)?;
    for (i, vector) in missing.into_iter().zip(vectors) {
        edges[i].embedding = Some(vector);
    }
    Ok(())
}

fn hops_param(raw: Option<i64>, default: i64, field: &str) -> Result<usize, ApiError> {
    let hops = raw.unwrap_or(default);
    if !(1..=5).contains(&hops) {
        return Err(
            ValidationError::new(field, format!("must be between 1 and 5, got {hops}")).into(),
        );
    }
    Ok(hops as usize)
}

fn edge_view(edge: &Edge, similarity: Option<f32>) -> EdgeView {
    EdgeView {
        source_id: edge.from,
        target_id: edge.to,
        description: edge.description.clone(),
        similarity,
    }
}

/// Loads the walk's memories (bounded) in the order reached, each with its hop count.
async fn visited_memories(
    state: &AppState,
    tenant: &TenantId,
    walk: &Walk,
) -> Result<(Vec<VisitedMemory>, bool), ApiError> {
    let ids: Vec<MemoryId> = walk.visited().map(|(id, _)| id).collect();
    let mut memories = state.store.memories(tenant, &ids).await?;
    let truncated = bound(&mut memories, &state.limits, json_size);
    let depth: HashMap<MemoryId, usize> = walk.visited().map(|(id, v)| (id, v.depth)).collect();
    let views = memories
        .into_iter()
        .map(|memory| VisitedMemory {
            hops: depth.get(&memory.id).copied().unwrap_or(0),
            memory,
        })
        .collect();
    Ok((views, truncated || walk.truncated()))
}

/// `GET /graph/path`: the shortest chain of links between two memories.
pub async fn find_path(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<ApiJson<PathAnswer>, ApiError> {
    let from = required_id(query.from_id.as_deref(), "from_id")?;
    let to = required_id(query.to_id.as_deref(), "to_id")?;
    load_memory(&state, &tenant, from, "from_id").await?;
    load_memory(&state, &tenant, to, "to_id").await?;
    let mut walk = Walk::new(from, state.limits.max_graph_nodes);
    drive(
        &state,
        &tenant,
        &mut walk,
        usize::MAX,
        false,
        |_| Some(1.0),
        None,
        |w| w.contains(&to),
    )
    .await?;
    let Some(path) = walk.path_to(to) else {
        return Ok(ApiJson(PathAnswer {
            found: false,
            hops: None,
            path: Vec::new(),
            edges: Vec::new(),
            truncated: walk.truncated(),
        }));
    };
    let ids: Vec<MemoryId> = path.iter().map(|(id, _)| *id).collect();
    let memories = state.store.memories(&tenant, &ids).await?;
    let edges: Vec<EdgeView> = path
        .windows(2)
        .map(|pair| {
            let edge = Edge {
                from: pair[0].0,
                to: pair[1].0,
                description: pair[1].1.clone().unwrap_or_default(),
                embedding: None,
            };
            edge_view(&edge, None)
        })
        .collect();
    Ok(ApiJson(PathAnswer {
        found: true,
        hops: Some(ids.len() - 1),
        path: memories,
        edges,
        truncated: false,
    }))
}

/// `GET /graph/neighborhood`: every memory within `hops` links.
pub async fn neighborhood(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiQuery(query): ApiQuery<NeighborhoodQuery>,
) -> Result<ApiJson<NeighborhoodAnswer>, ApiError> {
    let center = required_id(query.memory_id.as_deref(), "memory_id")?;
    let hops = hops_param(query.hops, 2, "hops")?;
    load_memory(&state, &tenant, center, "memory_id").await?;
    let mut walk = Walk::new(center, state.limits.max_graph_nodes);
    let edges = drive(
        &state,
        &tenant,
        &mut walk,
        hops,
        false,
        |_| Some(1.0),
        None,
        |_| false,
    )
    .await?;
    let (memories, truncated) = visited_memories(&state, &tenant, &walk).await?;
    Ok(ApiJson(NeighborhoodAnswer {
        center_id: center,
        hops,
        count: memories.len(),
        memories,
        edges: edges.iter().map(|e| edge_view(e, None)).collect(),
        truncated,
    }))
}

/// `GET /graph/traverse`: from a start memory, follow only edges whose descriptions mean what the
/// query asks: cosine similarity of description and query at least `edge_similarity_threshold`.
pub async fn traverse(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiQuery(params): ApiQuery<TraverseQuery>,
) -> Result<ApiJson<TraverseAnswer>, ApiError> {
    let start = required_id(params.start_memory_id.as_deref(), "start_memory_id")?;
    let query = params.query.as_deref().map(str::trim).unwrap_or_default();
    if query.is_empty() {
        return Err(ValidationError::new(
            "query",
            "must say what to follow, e.g. \"health effects\"",
        )
        .into());
    }
    let max_hops = hops_param(params.max_hops, 2, "max_hops")?;
    let threshold = params.edge_similarity_threshold.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ValidationError::new(
            "edge_similarity_threshold",
            format!("must be between 0 and 1, got {threshold}"),
        )
        .into());
    }
    let scope = params
        .scope_regex
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| TagFilter::from_scope_regex(Some(s), &state.limits))
        .transpose()?;
    let start_memory = load_memory(&state, &tenant, start, "start_memory_id").await?;
    if let Some(filter) = &scope
        && !filter.matches(&start_memory.tags)
    {
        return Err(ValidationError::new(
            "scope_regex",
            "the start memory's tags do not match it; start from a memory inside the scope",
        )
        .into());
    }
    let query_vector = state
        .semantic
        .embed_query(&tenant, query)
        .await
        .map_err(traversal_embed_error)?;
    let model = state.semantic.model_id().to_owned();
    let threshold = threshold as f32;
    // Follow an edge when its description means what the query asks, at least `threshold`
    // (cosine similarity of the two vectors).
    let follow = |edge: &Edge| {
        let vector = edge.embedding.as_ref()?.for_model(&model)?;
        let score = cosine(&query_vector, vector);
        (score >= threshold).then_some(score)
    };
    let mut walk = Walk::new(start, state.limits.max_graph_nodes);
    let edges = drive(
        &state,
        &tenant,
        &mut walk,
        max_hops,
        true,
        &follow,
        scope.as_ref(),
        |_| false,
    )
    .await?;
    let (memories, truncated) = visited_memories(&state, &tenant, &walk).await?;
    let traversed: Vec<EdgeView> = edges.iter().map(|e| edge_view(e, follow(e))).collect();
    Ok(ApiJson(TraverseAnswer {
        start_memory_id: start,
        query: query.to_owned(),
        max_hops,
        edge_similarity_threshold: threshold,
        memory_count: memories.len(),
        edge_count: traversed.len(),
        memories,
        traversed_edges: traversed,
        truncated,
    }))
}

/// Traversal by meaning needs its vectors now: a tenant whose CPU share is taken retries (503
/// `busy`), any other embedder failure says the traversal is unavailable.
fn traversal_embed_error(error: EmbedError) -> ApiError {
    match error {
        EmbedError::Busy(message) => ApiError::busy(message),
        e => ApiError::embedder_unavailable("traversal by meaning", &e),
    }
}
