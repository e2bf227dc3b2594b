//! The stored memory and its parts, as the REST API returns them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::MemoryId;

/// One fact an agent stored, with what Membrain derived from it and the edges to other facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "MemoryFields")]
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
    /// Older history entries dropped to keep `evolution_history` within its limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub evolution_history_dropped: u64,
    /// When the fact was observed: given at ingest, else the creation time. Questions that name
    /// a time ("last May") prefer memories observed then.
    pub observed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// [`Memory`] as read: exports and answers from before `observed_at` existed lack it, and then
/// the memory was observed when it was created.
#[derive(Deserialize)]
struct MemoryFields {
    id: MemoryId,
    content: String,
    tags: Vec<String>,
    category: String,
    context: String,
    keywords: Vec<String>,
    links: Vec<MemoryLink>,
    evolution_history: Vec<EvolutionEvent>,
    #[serde(default)]
    evolution_history_dropped: u64,
    observed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<MemoryFields> for Memory {
    fn from(fields: MemoryFields) -> Self {
        Self {
            id: fields.id,
            content: fields.content,
            tags: fields.tags,
            category: fields.category,
            context: fields.context,
            keywords: fields.keywords,
            links: fields.links,
            evolution_history: fields.evolution_history,
            evolution_history_dropped: fields.evolution_history_dropped,
            observed_at: fields.observed_at.unwrap_or(fields.created_at),
            created_at: fields.created_at,
            updated_at: fields.updated_at,
        }
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Memory {
    /// Appends `event` to the history, keeping the newest `max_entries` in full and counting the
    /// ones dropped.
    pub fn record_evolution(&mut self, event: EvolutionEvent, max_entries: usize) {
        self.evolution_history.push(event);
        let excess = self.evolution_history.len().saturating_sub(max_entries);
        if excess > 0 {
            self.evolution_history.drain(..excess);
            self.evolution_history_dropped += excess as u64;
        }
    }

    /// What the memory counts against its tenant's stored-bytes quota: its content and its kept
    /// history as stored (JSON); tags, keywords and context are not counted.
    pub fn stored_bytes(&self) -> usize {
        // Serialising plain data (strings, vectors, enums) cannot fail.
        let history = serde_json::to_string(&self.evolution_history).map_or(0, |json| json.len());
        self.content.len() + history
    }

    /// Bytes of the texts the memory holds (content, context, old wordings): at most what it
    /// serialises to, and cheap to count, so a caller can stop loading memories once an answer's
    /// byte budget is spent without serialising them first.
    pub fn text_bytes(&self) -> usize {
        let history: usize = self
            .evolution_history
            .iter()
            .filter_map(EvolutionEvent::old_content)
            .map(str::len)
            .sum();
        self.content.len() + self.context.len() + history
    }
}

/// What a memory shows where it is not the subject (a search result's related memories, an
/// edge's ends, a link candidate): its texts without links or history, which can be many times
/// larger and are read only where the memory itself is asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryBrief {
    pub id: MemoryId,
    pub content: String,
    pub context: String,
    pub tags: Vec<String>,
    pub keywords: Vec<String>,
}

impl MemoryBrief {
    /// Bytes of its texts, as [`Memory::text_bytes`] counts them.
    pub fn text_bytes(&self) -> usize {
        self.content.len() + self.context.len()
    }
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

impl EvolutionEvent {
    /// The wording this change replaced, if it replaced one (an update or a near-duplicate
    /// merge; an exact duplicate's merge changes no words).
    pub fn old_content(&self) -> Option<&str> {
        match self {
            Self::ContentUpdate { old_content, .. }
            | Self::NearDuplicateMerge { old_content, .. } => Some(old_content),
            Self::Merge { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_written_before_observation_times_was_observed_when_created() {
        let old = serde_json::json!({
            "id": MemoryId::new(), "content": "x", "tags": [], "category": "general",
            "context": "", "keywords": [], "links": [], "evolution_history": [],
            "created_at": "2024-01-02T03:04:05Z", "updated_at": "2024-02-02T03:04:05Z",
        });
        let memory: Memory = serde_json::from_value(old).unwrap();
        assert_eq!(memory.observed_at, memory.created_at);
        let again: Memory = serde_json::from_value(serde_json::to_value(&memory).unwrap()).unwrap();
        assert_eq!(again, memory);
    }

    #[test]
    fn history_keeps_the_newest_entries_and_counts_the_rest() {
        let now = Utc::now();
        let mut memory = Memory {
            id: MemoryId::new(),
            content: "x".into(),
            tags: vec![],
            category: "general".into(),
            context: String::new(),
            keywords: vec![],
            links: vec![],
            evolution_history: vec![],
            evolution_history_dropped: 0,
            observed_at: now,
            created_at: now,
            updated_at: now,
        };
        for i in 0..5 {
            memory.record_evolution(
                EvolutionEvent::ContentUpdate {
                    old_content: format!("v{i}"),
                    timestamp: now,
                },
                3,
            );
        }
        let kept: Vec<_> = memory
            .evolution_history
            .iter()
            .map(|e| match e {
                EvolutionEvent::ContentUpdate { old_content, .. } => old_content.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(kept, ["v2", "v3", "v4"]);
        assert_eq!(memory.evolution_history_dropped, 2);
        let json = serde_json::to_value(&memory).unwrap();
        assert_eq!(json["evolution_history_dropped"], 2);
        // The texts' bytes never exceed the serialised size (what budgets compare against).
        assert_eq!(memory.text_bytes(), "x".len() + "v2v3v4".len());
        assert!(memory.text_bytes() <= json.to_string().len());
        // The quota counts the content and the history as stored.
        let history = serde_json::to_string(&memory.evolution_history).unwrap();
        assert_eq!(memory.stored_bytes(), "x".len() + history.len());
    }
}
