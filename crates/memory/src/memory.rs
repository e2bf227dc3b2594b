//! The stored memory and its parts, as the REST API returns them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::MemoryId;

/// One fact an agent stored, with what Membrain derived from it and the edges to other facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub id: MemoryId,
    pub content: String,
    pub tags: Vec<String>,
    pub category: String,
    /// One short sentence that situates the memory (derived at ingest without any language model).
    pub context: String,
    /// The most telling words of the content, for display and lexical matching.
    pub keywords: Vec<String>,
    pub links: Vec<MemoryLink>,
    pub evolution_history: Vec<EvolutionEvent>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An undirected, described edge from one memory to another, seen from one end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryLink {
    /// The memory at the other end.
    pub memory_id: MemoryId,
    /// Why the two are linked, in words (matched by `traverse_graph`).
    pub description: String,
    pub created_at: DateTime<Utc>,
}

/// One change in a memory's life, oldest first in [`Memory::evolution_history`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EvolutionEvent {
    /// The content was replaced through an update.
    ContentUpdate {
        old_content: String,
        timestamp: DateTime<Utc>,
    },
    /// An exact duplicate was submitted and merged into this memory (its tags were added).
    Merge {
        merged_tags: Vec<String>,
        timestamp: DateTime<Utc>,
    },
    /// A near-duplicate (same meaning, other words) was submitted: its wording replaced the old
    /// one, its tags were added, and no second memory was stored.
    NearDuplicateMerge {
        old_content: String,
        similarity: f32,
        merged_tags: Vec<String>,
        timestamp: DateTime<Utc>,
    },
}
