//! `POST /memories/search`: hybrid ranking, related memories, relationship edges.

use membrain_memory::{Memory, MemoryBrief, MemoryId};
use serde::{Deserialize, Deserializer, Serialize};

use crate::memories::TagsInput;

/// `POST /memories/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// A natural-language question; may be empty only with `full_scope`.
    #[serde(default)]
    pub query: String,
    /// How many results, 1 to 100.
    #[serde(default = "default_k")]
    pub k: i64,
    /// `raw` (default), `interpreted` or `both`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<String>,
    /// A tag regex, or a list of tag regexes that must all match. A single string is one regex
    /// (it may contain commas), never a comma list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword_filter: Option<TagsInput>,
    /// One tag regex; not with `keyword_filter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_regex: Option<String>,
    /// Only memories carrying at least one of these tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    /// Accepted for compatibility with the public client: hybrid ranking is always on.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rerank: bool,
    /// `hybrid` (default), `lexical` (BM25 only) or `dense` (vectors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranking: Option<String>,
    /// List every memory in scope (ranked ones first), not only the best `k`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub full_scope: bool,
    /// Only memories observed at or after this time (RFC 3339 or `YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_after: Option<String>,
    /// Only memories observed before this time (RFC 3339 or `YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_before: Option<String>,
}

fn default_k() -> i64 {
    5
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl SearchRequest {
    /// A plain question for the best `k`.
    pub fn new(query: impl Into<String>, k: i64) -> Self {
        Self {
            query: query.into(),
            k,
            response_format: None,
            keyword_filter: None,
            scope_regex: None,
            scope: None,
            rerank: false,
            ranking: None,
            full_scope: false,
            observed_after: None,
            observed_before: None,
        }
    }
}

/// The answer: results best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchAnswer {
    pub count: usize,
    pub results: Vec<SearchResult>,
    /// Whether the answer's bounds on count or bytes cut the list.
    pub truncated: bool,
    /// Why the answer is less than it could be (lexical only while the model is busy, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// With `response_format` `interpreted` or `both`: the summary, or `null` when none could
    /// be written (then `interpreted_error` says why). Absent with `raw`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_or_null"
    )]
    pub interpreted: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreted_error: Option<String>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn present_or_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// One result: a memory, or a link whose description answers the question better than either
/// of its ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SearchResult {
    MemoryNode(MemoryNode),
    RelationshipEdge(RelationshipEdge),
}

/// A memory found, whole, with its scores and the memories it links to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryNode {
    #[serde(flatten)]
    pub memory: Memory,
    /// The cosine similarity of query and memory (the fused score when it has no vector).
    pub semantic_score: f32,
    /// What the order follows.
    pub score: f32,
    pub related_memories: Vec<RelatedMemory>,
}

/// A memory linked from a result, and how the two relate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelatedMemory {
    pub id: MemoryId,
    pub content: String,
    pub tags: Vec<String>,
    /// The link's description.
    pub relationship: String,
}

/// A link between two memories whose description matches the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationshipEdge {
    pub score: f32,
    pub description: String,
    pub source: EdgeEnd,
    pub target: EdgeEnd,
}

/// An edge's end as an answer shows it: a memory's texts without links or history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeEnd {
    pub id: MemoryId,
    pub content: String,
    pub context: String,
    pub tags: Vec<String>,
    pub keywords: Vec<String>,
}

impl From<MemoryBrief> for EdgeEnd {
    fn from(brief: MemoryBrief) -> Self {
        let MemoryBrief {
            id,
            content,
            context,
            tags,
            keywords,
        } = brief;
        Self {
            id,
            content,
            context,
            tags,
            keywords,
        }
    }
}

impl From<&Memory> for EdgeEnd {
    fn from(memory: &Memory) -> Self {
        Self {
            id: memory.id,
            content: memory.content.clone(),
            context: memory.context.clone(),
            tags: memory.tags.clone(),
            keywords: memory.keywords.clone(),
        }
    }
}
