//! Links and graph walks: `/api/v1/memories/link`, `/unlink`, `/api/v1/graph/…`.

use membrain_memory::{Memory, MemoryId};
use serde::{Deserialize, Serialize};

/// `POST /memories/link` (with a description) and `POST /memories/unlink` (without).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LinkRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_id_1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_id_2: Option<String>,
    /// How the two relate (what `traverse` matches); link only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The answer to link (`status: linked`, with the description) and unlink (`unlinked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAnswer {
    pub status: String,
    pub memory_id_1: MemoryId,
    pub memory_id_2: MemoryId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A link as a walk shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeView {
    pub source_id: MemoryId,
    pub target_id: MemoryId,
    pub description: String,
    /// How similar the description is to the traversal's query (traverse only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
}

/// `GET /graph/path?from_id=&to_id=`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PathQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_id: Option<String>,
}

/// The shortest chain of links between two memories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathAnswer {
    pub found: bool,
    /// Links on the path; `null` when none was found.
    pub hops: Option<usize>,
    /// The memories on the path, from first to last.
    pub path: Vec<Memory>,
    pub edges: Vec<EdgeView>,
    /// Whether the walk stopped at its node bound before finding a path.
    pub truncated: bool,
}

/// `GET /graph/neighborhood?memory_id=&hops=`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NeighborhoodQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_id: Option<String>,
    /// 1 to 5 [default: 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hops: Option<i64>,
}

/// A memory a walk reached, and in how many links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitedMemory {
    #[serde(flatten)]
    pub memory: Memory,
    pub hops: usize,
}

/// Every memory within `hops` links of the centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighborhoodAnswer {
    pub center_id: MemoryId,
    pub hops: usize,
    pub count: usize,
    pub memories: Vec<VisitedMemory>,
    pub edges: Vec<EdgeView>,
    pub truncated: bool,
}

/// `GET /graph/traverse?start_memory_id=&query=&max_hops=&edge_similarity_threshold=&scope_regex=`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TraverseQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_memory_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// 1 to 5 [default: 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hops: Option<i64>,
    /// 0 to 1 [default: 0.5].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_similarity_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_regex: Option<String>,
}

/// The memories reached by following links whose descriptions mean what the query asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraverseAnswer {
    pub start_memory_id: MemoryId,
    pub query: String,
    pub max_hops: usize,
    pub edge_similarity_threshold: f32,
    pub memory_count: usize,
    pub edge_count: usize,
    pub memories: Vec<VisitedMemory>,
    pub traversed_edges: Vec<EdgeView>,
    pub truncated: bool,
}
