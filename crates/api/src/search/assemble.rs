//! Putting the answer together: memory nodes with their related memories, and links whose
//! description matches the query as `relationship_edge` results. The choices are plain
//! functions of what was loaded ([`memory_nodes`], [`edge_score`], [`edge_results`]), tested
//! without a database or HTTP; [`matching_edges`] only loads the ends it lacks first.

use std::collections::{HashMap, HashSet};

use membrain_contract::search::{MemoryNode, RelatedMemory, RelationshipEdge, SearchResult};
use membrain_memory::embedding::cosine;
use membrain_memory::graph::Edge;
use membrain_memory::lexical::term_overlap;
use membrain_memory::{Memory, MemoryBrief, MemoryId, TagFilter, TenantId};
use membrain_store::StoreError;

use super::RELATED_PER_RESULT;
use crate::error::ApiError;
use crate::server::AppState;

/// An edge is a result only when its description is at least this similar to the query.
const EDGE_MIN_SIMILARITY: f32 = 0.3;

/// The items of `ids` that `load` finds, in order, loaded `chunk` at a time until their texts
/// pass `budget` bytes: what is past it would be cut by the answer's bound anyway, and a tenant
/// whose memories are long (or carry long histories) would otherwise have every one of them
/// read and parsed per search.
pub(super) async fn load_within_budget<T, Loaded>(
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

/// The answer's memory nodes, each with its scores and up to [`RELATED_PER_RESULT`] related
/// memories.
pub(super) fn memory_nodes(
    memories: Vec<Memory>,
    neighbours: &HashMap<MemoryId, MemoryBrief>,
    scores: &HashMap<MemoryId, f32>,
    similarity: impl Fn(MemoryId) -> Option<f32>,
) -> Vec<SearchResult> {
    memories
        .into_iter()
        .map(|memory| {
            let related_memories = memory
                .links
                .iter()
                .filter_map(|link| {
                    let other = neighbours.get(&link.memory_id)?;
                    Some(RelatedMemory {
                        id: other.id,
                        content: other.content.clone(),
                        tags: other.tags.clone(),
                        relationship: link.description.clone(),
                    })
                })
                .take(RELATED_PER_RESULT)
                .collect();
            let score = scores.get(&memory.id).copied().unwrap_or(0.0);
            SearchResult::MemoryNode(MemoryNode {
                // The cosine similarity of query and memory; `score` is what the order follows.
                semantic_score: similarity(memory.id).unwrap_or(score),
                score,
                related_memories,
                memory,
            })
        })
        .collect()
}

/// How well an edge's description answers the query, when it should be a result at all. With
/// vectors: their cosine, when at least [`EDGE_MIN_SIMILARITY`] and above both ends'
/// similarity to the query (an edge that says no more than its ends is not worth showing).
/// Without (no query vector, or the edge has none of `model`'s): the words they share.
pub(super) fn edge_score(
    edge: &Edge,
    query: &str,
    vector: Option<&[f32]>,
    model: &str,
    similar: impl Fn(MemoryId) -> Option<f32>,
) -> Option<f32> {
    match (
        vector,
        edge.embedding.as_ref().and_then(|e| e.for_model(model)),
    ) {
        (Some(query_vector), Some(edge_vector)) => {
            let score = cosine(query_vector, edge_vector);
            let ends = similar(edge.from)
                .unwrap_or(0.0)
                .max(similar(edge.to).unwrap_or(0.0));
            (score >= EDGE_MIN_SIMILARITY && score > ends).then_some(score)
        }
        _ => Some(term_overlap(query, &edge.description)).filter(|s| *s > 0.0),
    }
}

/// The best `k` scored edges as `relationship_edge` results ([`best_edges`], [`edge_results`]),
/// after loading the briefs of the ends that are neither a result nor a neighbour.
#[allow(clippy::too_many_arguments)] // One private step of `run`, its inputs spelled out.
pub(super) async fn matching_edges(
    state: &AppState,
    tenant: &TenantId,
    edges: Vec<(f32, Edge)>,
    memories: &[Memory],
    neighbours: &HashMap<MemoryId, MemoryBrief>,
    filter: &TagFilter,
    k: usize,
) -> Result<Vec<SearchResult>, ApiError> {
    let edges = best_edges(edges, k);
    let known = |id: &MemoryId| {
        neighbours.contains_key(id) || memories.iter().any(|memory| memory.id == *id)
    };
    let mut missing: Vec<MemoryId> = Vec::new();
    for (_, edge) in &edges {
        for end in [edge.from, edge.to] {
            if !known(&end) && !missing.contains(&end) {
                missing.push(end);
            }
        }
    }
    let loaded = state.store.memory_briefs(tenant, &missing).await?;
    let ends: HashMap<MemoryId, EdgeEnd<'_>> = memories
        .iter()
        .map(|m| (m.id, EdgeEnd::from(m)))
        .chain(neighbours.values().map(|m| (m.id, EdgeEnd::from(m))))
        .chain(loaded.iter().map(|m| (m.id, EdgeEnd::from(m))))
        .collect();
    Ok(edge_results(edges, &ends, filter))
}

/// The best `k` edges, best first, each pair of memories once (a link is found from both ends).
fn best_edges(mut edges: Vec<(f32, Edge)>, k: usize) -> Vec<(f32, Edge)> {
    edges.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut seen: HashSet<(MemoryId, MemoryId)> = HashSet::new();
    edges.retain(|(_, e)| seen.insert((e.from.min(e.to), e.from.max(e.to))));
    edges.truncate(k);
    edges
}

/// The edges as `relationship_edge` results, in order: only those whose both ends are known
/// and inside the search's scope.
fn edge_results(
    edges: Vec<(f32, Edge)>,
    ends: &HashMap<MemoryId, EdgeEnd<'_>>,
    filter: &TagFilter,
) -> Vec<SearchResult> {
    edges
        .into_iter()
        .filter_map(|(score, edge)| {
            let source = ends.get(&edge.from)?;
            let target = ends.get(&edge.to)?;
            let in_scope = |m: &EdgeEnd| filter.is_empty() || filter.matches(m.tags);
            if !(in_scope(source) && in_scope(target)) {
                return None;
            }
            Some(SearchResult::RelationshipEdge(RelationshipEdge {
                score,
                source: source.to_wire(),
                target: target.to_wire(),
                description: edge.description,
            }))
        })
        .collect()
}

/// A relationship edge's end, borrowed from a result or a brief while the edges are matched;
/// only the ends of the edges kept are copied into the answer.
struct EdgeEnd<'a> {
    id: MemoryId,
    content: &'a str,
    context: &'a str,
    tags: &'a [String],
    keywords: &'a [String],
}

impl EdgeEnd<'_> {
    fn to_wire(&self) -> membrain_contract::search::EdgeEnd {
        membrain_contract::search::EdgeEnd {
            id: self.id,
            content: self.content.to_owned(),
            context: self.context.to_owned(),
            tags: self.tags.to_vec(),
            keywords: self.keywords.to_vec(),
        }
    }
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
    use chrono::Utc;
    use membrain_memory::tag_filter::TagFilterInput;
    use membrain_memory::{Embedding, Limits, MemoryLink};

    fn memory(content: &str, tags: &[&str], links: &[MemoryId]) -> Memory {
        let now = Utc::now();
        Memory {
            id: MemoryId::new(),
            content: content.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            category: "general".into(),
            context: String::new(),
            keywords: vec![],
            links: links
                .iter()
                .map(|id| MemoryLink {
                    memory_id: *id,
                    description: format!("to {id}"),
                    created_at: now,
                })
                .collect(),
            evolution_history: vec![],
            evolution_history_dropped: 0,
            observed_at: now,
            created_at: now,
            updated_at: now,
        }
    }

    fn brief(id: MemoryId, tags: &[&str]) -> MemoryBrief {
        MemoryBrief {
            id,
            content: format!("brief {id}"),
            context: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            keywords: vec![],
        }
    }

    fn edge(from: MemoryId, to: MemoryId, description: &str, vector: Option<Vec<f32>>) -> Edge {
        Edge {
            from,
            to,
            description: description.into(),
            embedding: vector.map(|v| Embedding::new("m", v)),
        }
    }

    fn scope(regex: &str) -> TagFilter {
        TagFilter::parse(
            TagFilterInput {
                keyword_filter: vec![],
                scope_regex: Some(regex.into()),
                scope: vec![],
            },
            &Limits::default(),
        )
        .expect("a valid scope")
    }

    #[test]
    fn a_node_shows_its_loaded_neighbours_up_to_five_and_its_scores() {
        let others: Vec<MemoryId> = (0..7).map(|_| MemoryId::new()).collect();
        let result = memory("tea", &[], &others);
        let id = result.id;
        // One neighbour was not loaded (past the budget, or out of scope): it is left out.
        let neighbours: HashMap<MemoryId, MemoryBrief> = others[1..]
            .iter()
            .map(|id| (*id, brief(*id, &[])))
            .collect();
        let scores = HashMap::from([(id, 0.8)]);
        let nodes = memory_nodes(vec![result], &neighbours, &scores, |_| None);
        let [SearchResult::MemoryNode(node)] = nodes.as_slice() else {
            panic!("one memory node, got {nodes:?}");
        };
        let related: Vec<MemoryId> = node.related_memories.iter().map(|r| r.id).collect();
        assert_eq!(related, others[1..6]);
        assert_eq!(
            node.related_memories[0].relationship,
            format!("to {}", others[1])
        );
        // Without a vector the semantic score is the fused one.
        assert_eq!((node.score, node.semantic_score), (0.8, 0.8));
        let with_vector = memory_nodes(vec![memory("x", &[], &[])], &neighbours, &scores, |_| {
            Some(0.25)
        });
        let [SearchResult::MemoryNode(node)] = with_vector.as_slice() else {
            panic!("one memory node");
        };
        assert_eq!((node.score, node.semantic_score), (0.0, 0.25));
    }

    #[test]
    fn an_edge_counts_when_its_description_says_more_than_its_ends() {
        let (a, b) = (MemoryId::new(), MemoryId::new());
        let query = [1.0, 0.0];
        let close = edge(a, b, "x", Some(vec![0.8, 0.6]));
        let ends = |similarity: f32| move |_: MemoryId| Some(similarity);
        // cos = 0.8: above both ends at 0.5, not above an end at 0.9.
        assert_eq!(
            edge_score(&close, "q", Some(&query), "m", ends(0.5)),
            Some(0.8)
        );
        assert_eq!(edge_score(&close, "q", Some(&query), "m", ends(0.9)), None);
        // Below the floor, however weak its ends.
        let far = edge(a, b, "x", Some(vec![0.2, 0.98]));
        assert_eq!(edge_score(&far, "q", Some(&query), "m", ends(0.0)), None);
        // No vector of this model, or no query vector: the words the two share.
        let words = edge(a, b, "coffee causes reflux", Some(vec![1.0, 0.0]));
        let by_words = edge_score(
            &words,
            "does coffee cause reflux",
            Some(&query),
            "other",
            ends(0.0),
        );
        assert!(by_words.is_some_and(|s| s > 0.0), "{by_words:?}");
        assert_eq!(edge_score(&words, "tea", None, "m", ends(0.0)), None);
    }

    #[test]
    fn the_best_edges_come_first_each_pair_once() {
        let (a, b, c) = (MemoryId::new(), MemoryId::new(), MemoryId::new());
        let edges = vec![
            (0.4, edge(a, b, "ab", None)),
            (0.9, edge(b, c, "bc", None)),
            // The same link seen from its other end.
            (0.7, edge(b, a, "ab", None)),
            (0.1, edge(a, c, "ac", None)),
        ];
        let best: Vec<(f32, String)> = best_edges(edges.clone(), 10)
            .into_iter()
            .map(|(s, e)| (s, e.description))
            .collect();
        let expected = [(0.9, "bc"), (0.7, "ab"), (0.1, "ac")].map(|(s, d)| (s, d.to_owned()));
        assert_eq!(best, expected);
        assert_eq!(best_edges(edges, 1).len(), 1);
    }

    #[test]
    fn an_edge_result_needs_both_ends_known_and_in_scope() {
        let (a, b, c, unknown) = (
            MemoryId::new(),
            MemoryId::new(),
            MemoryId::new(),
            MemoryId::new(),
        );
        let briefs = [
            brief(a, &["work"]),
            brief(b, &["work"]),
            brief(c, &["home"]),
        ];
        let ends: HashMap<MemoryId, EdgeEnd<'_>> =
            briefs.iter().map(|m| (m.id, EdgeEnd::from(m))).collect();
        let edges = vec![
            (0.9, edge(a, b, "ab", None)),
            (0.8, edge(a, c, "ac", None)),
            (0.7, edge(a, unknown, "a?", None)),
        ];
        let described = |results: Vec<SearchResult>| -> Vec<String> {
            results
                .into_iter()
                .map(|r| match r {
                    SearchResult::RelationshipEdge(e) => {
                        assert_eq!(e.source.content, format!("brief {}", e.source.id));
                        e.description
                    }
                    other => panic!("an edge, got {other:?}"),
                })
                .collect()
        };
        let everything = TagFilter::parse(TagFilterInput::default(), &Limits::default())
            .expect("an empty filter");
        assert_eq!(
            described(edge_results(edges.clone(), &ends, &everything)),
            ["ab", "ac"]
        );
        assert_eq!(
            described(edge_results(edges, &ends, &scope("^work$"))),
            ["ab"]
        );
    }

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
