//! What ingest decides about a new memory, as plain functions of what was loaded.
//!
//! Ingest makes three decisions, each here without I/O, each called by the edge that holds the
//! data it needs:
//!
//! * [`choose_neighbours`]: among the memories a dense search found similar (best first), the
//!   near-duplicate to merge into and the memories to link to. The ingest worker calls it,
//!   then describes the links.
//! * [`subject_candidates`] and [`subject_links`]: the memories that mention what the new one
//!   names (a person, a place, an identifier, a phrase) but are too unlike it in meaning for
//!   [`choose_neighbours`]: which a lexical search's hits are worth reading, and which of those
//!   the worker confirmed (`phrases::shared_subjects`) are linked, within the links budget.
//! * [`decide`]: whether the new memory is created, merged into its exact duplicate (the same
//!   normalised content) or merged into its near-duplicate (the new wording wins, the old one
//!   goes to history), and by how much the tenant's usage grows. The store calls it inside the
//!   transaction that writes the result, with the duplicates it just loaded.
//! * [`link_targets`]: which of the chosen link targets are linked, once the memory's id is
//!   known and the targets deleted meanwhile are known. The store calls it in the same
//!   transaction.
//!
//! ```
//! use membrain_memory::MemoryId;
//! use membrain_memory::ingest::{NeighbourThresholds, SimilarMemory, choose_neighbours};
//!
//! let thresholds = NeighbourThresholds {
//!     duplicate_threshold: 0.9,
//!     link_threshold: 0.45,
//!     max_links: 3,
//! };
//! let (same, related) = (MemoryId::new(), MemoryId::new());
//! let similar = [
//!     SimilarMemory { id: same, similarity: 0.93 },
//!     SimilarMemory { id: related, similarity: 0.6 },
//! ];
//! let neighbours = choose_neighbours(&similar, &thresholds);
//! assert_eq!(neighbours.near_duplicate.map(|n| n.id), Some(same));
//! assert_eq!(neighbours.links, [similar[1]]);
//! ```

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::input::merge_tags;
use crate::phrases::plain_context;

/// Where an ingest job stands: stored with the job and answered as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// What ingest did with the content: the job's outcome as stored and as answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestAction {
    /// A new memory was stored.
    Created,
    /// An exact or near duplicate existed; the content was merged into it.
    Merged,
    /// The memory was changed in place.
    Updated,
}

impl IngestAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Merged => "merged",
            Self::Updated => "updated",
        }
    }
}
use crate::{EvolutionEvent, Limits, Memory, MemoryId, NewMemory};

/// A stored memory like the new one, and how alike the two are (cosine similarity of their
/// vectors).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimilarMemory {
    pub id: MemoryId,
    pub similarity: f32,
}

/// How similar a stored memory must be for ingest to merge into it or link to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeighbourThresholds {
    /// The most similar memory, when at least this similar, is a near-duplicate to merge into.
    pub duplicate_threshold: f32,
    /// Memories at least this similar are linked to; no less similar one is considered at all.
    pub link_threshold: f32,
    /// Most links a new memory gets at ingest.
    pub max_links: usize,
}

impl NeighbourThresholds {
    /// How many similar memories a search should return so that [`choose_neighbours`] can
    /// fill every place: one near-duplicate and `max_links` links.
    pub fn candidates_wanted(&self) -> usize {
        self.max_links.saturating_add(1)
    }
}

/// The similar memories ingest acts on, chosen by [`choose_neighbours`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Neighbours {
    /// The memory the new one merges into instead of being stored twice.
    pub near_duplicate: Option<SimilarMemory>,
    /// The memories to link the new one to, most similar first.
    pub links: Vec<SimilarMemory>,
}

/// Chooses, from `similar` (most similar first, as a search ranks them), the near-duplicate and
/// the link targets. Only memories at least `link_threshold` similar count; the first of them is
/// the near-duplicate when it is at least `duplicate_threshold` similar; the next ones, up to
/// `max_links`, are link targets — a second memory above the duplicate threshold among them.
pub fn choose_neighbours(
    similar: &[SimilarMemory],
    thresholds: &NeighbourThresholds,
) -> Neighbours {
    let mut candidates = similar
        .iter()
        .filter(|candidate| candidate.similarity >= thresholds.link_threshold)
        .copied()
        .peekable();
    let near_duplicate =
        candidates.next_if(|best| best.similarity >= thresholds.duplicate_threshold);
    Neighbours {
        near_duplicate,
        links: candidates.take(thresholds.max_links).collect(),
    }
}

/// Most links a new memory gets for a shared subject, on top of those chosen by similarity: a
/// name shared by many memories must not link each new one to all of them.
pub const MAX_SUBJECT_LINKS: usize = 2;
/// Most memories found by a shared subject whose content is read to confirm it.
pub const SUBJECT_CANDIDATES: usize = 4;

/// Of the memories a lexical search found by the new memory's subjects (best first), those
/// worth reading to confirm a shared subject: not the near-duplicate, not one linked already,
/// at most [`SUBJECT_CANDIDATES`]; none when the links are full.
pub fn subject_candidates(
    found: &[SimilarMemory],
    neighbours: &Neighbours,
    thresholds: &NeighbourThresholds,
) -> Vec<SimilarMemory> {
    if subject_budget(neighbours, thresholds) == 0 {
        return Vec::new();
    }
    let chosen: HashSet<MemoryId> = neighbours
        .near_duplicate
        .iter()
        .chain(&neighbours.links)
        .map(|n| n.id)
        .collect();
    let mut seen = HashSet::new();
    found
        .iter()
        .filter(|hit| !chosen.contains(&hit.id) && seen.insert(hit.id))
        .take(SUBJECT_CANDIDATES)
        .copied()
        .collect()
}

/// Which of the `confirmed` candidates (those that do share a subject, in the search's order)
/// are linked: the most similar in meaning first, the search's order between equals (it puts
/// the newer first), as many as the links chosen by similarity leave room for and at most
/// [`MAX_SUBJECT_LINKS`].
pub fn subject_links(
    mut confirmed: Vec<SimilarMemory>,
    neighbours: &Neighbours,
    thresholds: &NeighbourThresholds,
) -> Vec<SimilarMemory> {
    confirmed.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    confirmed.truncate(subject_budget(neighbours, thresholds));
    confirmed
}

fn subject_budget(neighbours: &Neighbours, thresholds: &NeighbourThresholds) -> usize {
    thresholds
        .max_links
        .saturating_sub(neighbours.links.len())
        .min(MAX_SUBJECT_LINKS)
}

/// Whether `new`, a near-duplicate of `old` by meaning, states the same fact, so ingest may
/// merge it into `old`; otherwise the two are distinct facts to link. Vectors hardly see the
/// difference between "… number 3, marker 9b00e4" and "… number 4, marker 80d252", or between
/// two people with the same phone number, so the words decide:
///
/// * the same names, numbers and identifiers (in any order, in any other words): the same fact,
///   reworded — merge;
/// * otherwise, an **update** merges: the two texts differ in one place only (what is left
///   after their common beginning and end shares no word), and what changed there is a value —
///   numbers, dates, common words — not a name or an identifier ("Tom's birthday is March 3" →
///   "Tom's birthday is May 3");
/// * anything else (two places changed, or a name or identifier changed) is a distinct fact.
pub fn same_fact(old: &str, new: &str) -> bool {
    let (old_words, new_words) = (words(old), words(new));
    // A name in either text is a name in both, also where it begins a sentence.
    let names: HashSet<String> = old_words
        .iter()
        .chain(&new_words)
        .filter(|w| w.looks_like_name())
        .map(|w| w.text.to_lowercase())
        .collect();
    let is_name = |word: &Word| names.contains(&word.text.to_lowercase());
    let distinguishing = |words: &[Word]| -> Vec<String> {
        words
            .iter()
            .filter(|w| is_name(w) || w.is_number())
            .map(|w| w.text.to_lowercase())
            .collect()
    };
    let mut old_marks = distinguishing(&old_words);
    let mut new_marks = distinguishing(&new_words);
    old_marks.sort_unstable();
    new_marks.sort_unstable();
    if old_marks == new_marks {
        return true;
    }
    let lower =
        |words: &[Word]| -> Vec<String> { words.iter().map(|w| w.text.to_lowercase()).collect() };
    let (old_lower, new_lower) = (lower(&old_words), lower(&new_words));
    let prefix = old_lower
        .iter()
        .zip(&new_lower)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = old_lower[prefix..]
        .iter()
        .rev()
        .zip(new_lower[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let old_changed = &old_words[prefix..old_words.len() - suffix];
    let new_changed = &new_words[prefix..new_words.len() - suffix];
    let one_place = old_changed.iter().all(|a| {
        !new_changed
            .iter()
            .any(|b| a.text.eq_ignore_ascii_case(b.text))
    });
    let a_value_changed = old_changed
        .iter()
        .chain(new_changed)
        .all(|word| !is_name(word) && !word.is_identifier());
    one_place && a_value_changed
}

/// One word of a text, and whether it begins a sentence (where a capital says nothing).
#[derive(Debug)]
struct Word<'a> {
    text: &'a str,
    starts_sentence: bool,
    /// Followed by `'s`: someone's or something's, a name even where a sentence begins.
    possessive: bool,
}

impl Word<'_> {
    /// A proper name: capitalised where a sentence does not begin, and no calendar word.
    fn looks_like_name(&self) -> bool {
        (!self.starts_sentence || self.possessive)
            && self.text.chars().next().is_some_and(char::is_uppercase)
            && !crate::when::is_calendar_word(&self.text.to_lowercase())
    }

    /// An identifier: letters and digits mixed (a code, a hash, a model number).
    fn is_identifier(&self) -> bool {
        self.is_number() && self.text.chars().any(char::is_alphabetic)
    }

    fn is_number(&self) -> bool {
        self.text.chars().any(|c| c.is_ascii_digit())
    }
}

/// The words of `text` (runs of letters and digits), each knowing whether a sentence begins
/// with it.
fn words(text: &str) -> Vec<Word<'_>> {
    let mut words = Vec::new();
    let mut starts_sentence = true;
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(begin) = start.take() {
            let rest = &text[i..];
            words.push(Word {
                text: &text[begin..i],
                starts_sentence,
                possessive: rest.starts_with("'s") || rest.starts_with("\u{2019}s"),
            });
            starts_sentence = false;
        }
        if matches!(c, '.' | '!' | '?' | '\n') {
            starts_sentence = true;
        }
    }
    words
}

/// The new memory as ingest prepared it: the caller's input (tags completed when none were
/// given) and the keywords and context line derived from it.
#[derive(Debug, Clone, Copy)]
pub struct IncomingMemory<'a> {
    pub new: &'a NewMemory,
    pub keywords: &'a [String],
    pub context: &'a str,
}

/// What ingest writes for one new memory: the memory as it is to be stored, and which case
/// made it so.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestDecision {
    /// The content is stored already (the same normalised content): the new tags are merged
    /// into that memory, up to the tag limit, and a [`EvolutionEvent::Merge`] entry records
    /// them. When no tag was added, `tags_added` is false and the memory is unchanged: nothing
    /// needs to be written.
    ExactDuplicate { memory: Memory, tags_added: bool },
    /// A memory says the same in other words: the new wording replaces its content (the old one
    /// goes to history as [`EvolutionEvent::NearDuplicateMerge`] with the similarity), the
    /// new tags are merged, and its keywords and context follow the new wording. `grown_bytes`
    /// is how much its [`Memory::stored_bytes`] grew (negative when it shrank).
    NearDuplicate { memory: Memory, grown_bytes: i64 },
    /// Nothing like it is stored: a new memory, with a new id.
    Create { memory: Memory },
}

/// What a write adds to its tenant's usage, to check against the quotas before writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageGrowth {
    pub memories: i64,
    /// Bytes as [`Memory::stored_bytes`] counts them; negative when the memory shrank.
    pub bytes: i64,
}

impl IngestDecision {
    /// The memory to write (or, for an unchanged exact duplicate, the one already stored).
    pub fn memory(&self) -> &Memory {
        match self {
            Self::ExactDuplicate { memory, .. }
            | Self::NearDuplicate { memory, .. }
            | Self::Create { memory } => memory,
        }
    }

    /// Whether a new memory is stored or the new one was merged into a stored one.
    pub fn action(&self) -> IngestAction {
        match self {
            Self::Create { .. } => IngestAction::Created,
            Self::ExactDuplicate { .. } | Self::NearDuplicate { .. } => IngestAction::Merged,
        }
    }

    /// What the decision adds to the tenant's usage. `None` for an exact duplicate, which is
    /// not checked against the quotas: it adds no memory and at most one history entry, within
    /// `max_history_entries`.
    pub fn usage_growth(&self) -> Option<UsageGrowth> {
        match self {
            Self::ExactDuplicate { .. } => None,
            Self::NearDuplicate { grown_bytes, .. } => Some(UsageGrowth {
                memories: 0,
                bytes: *grown_bytes,
            }),
            Self::Create { memory } => Some(UsageGrowth {
                memories: 1,
                bytes: signed(memory.stored_bytes()),
            }),
        }
    }
}

/// Decides what ingest writes for `incoming`, given what the store holds now: the memory with
/// the same normalised content (`exact_duplicate`), and the near-duplicate chosen before (by
/// [`choose_neighbours`]) with its similarity, if it still exists. An exact duplicate wins
/// over a near-duplicate; `now` stamps the history entry and the times of what changes.
pub fn decide(
    incoming: IncomingMemory<'_>,
    exact_duplicate: Option<Memory>,
    near_duplicate: Option<(Memory, f32)>,
    limits: &Limits,
    now: DateTime<Utc>,
) -> IngestDecision {
    if let Some(mut memory) = exact_duplicate {
        let added = merge_tags(&mut memory.tags, &incoming.new.tags, limits.max_tags);
        let tags_added = !added.is_empty();
        if tags_added {
            memory.record_evolution(
                EvolutionEvent::Merge {
                    merged_tags: added,
                    timestamp: now,
                },
                limits.max_history_entries,
            );
            memory.updated_at = now;
        }
        IngestDecision::ExactDuplicate { memory, tags_added }
    } else if let Some((mut memory, similarity)) = near_duplicate {
        // The same fact in new words: the newer wording wins, the old one goes to history.
        let before = memory.stored_bytes();
        let merged_tags = merge_tags(&mut memory.tags, &incoming.new.tags, limits.max_tags);
        let old_content = std::mem::replace(&mut memory.content, incoming.new.content.clone());
        memory.record_evolution(
            EvolutionEvent::NearDuplicateMerge {
                old_content,
                similarity,
                merged_tags,
                timestamp: now,
            },
            limits.max_history_entries,
        );
        let grown_bytes = signed(memory.stored_bytes()) - signed(before);
        // The stored memory keeps its category; its context line is derived again from that
        // category and the new wording, not taken from the new memory.
        memory.keywords = incoming.keywords.to_vec();
        memory.context = plain_context(&memory.category, &memory.content);
        memory.updated_at = now;
        // The newer wording was observed later (or is dated later): the memory now stands for it.
        memory.observed_at = memory
            .observed_at
            .max(incoming.new.observed_at.unwrap_or(now));
        IngestDecision::NearDuplicate {
            memory,
            grown_bytes,
        }
    } else {
        IngestDecision::Create {
            memory: Memory {
                id: MemoryId::new(),
                content: incoming.new.content.clone(),
                tags: incoming.new.tags.clone(),
                category: incoming.new.category.clone(),
                context: incoming.context.to_owned(),
                keywords: incoming.keywords.to_vec(),
                links: Vec::new(),
                evolution_history: Vec::new(),
                evolution_history_dropped: 0,
                observed_at: incoming.new.observed_at.unwrap_or(now),
                created_at: now,
                updated_at: now,
            },
        }
    }
}

/// The memories ingest links `memory` to: `targets` in their order, without `memory` itself (an
/// exact duplicate merged into may have been chosen as a link target) and without those no
/// longer stored (`still_stored`: deleted since they were chosen).
pub fn link_targets(
    memory: MemoryId,
    targets: &[MemoryId],
    still_stored: &HashSet<MemoryId>,
) -> Vec<MemoryId> {
    targets
        .iter()
        .copied()
        .filter(|target| *target != memory && still_stored.contains(target))
        .collect()
}

/// A byte count as the 64-bit signed integer databases count usage in (saturating).
fn signed(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    // --- same_fact ---

    /// The rule on a table of pairs (older, newer, same fact?): rewordings and updates of one
    /// value merge; facts of the same template with other numbers, identifiers or names do not.
    #[test]
    fn only_the_same_fact_merges() {
        let pairs = [
            (
                "User prefers dark mode",
                "The user likes dark mode in every app",
                true,
            ),
            ("Tom's birthday is March 3", "Tom's birthday is May 3", true),
            (
                "I moved to Lisbon in 2023",
                "I moved to Lisbon in 2024",
                true,
            ),
            (
                "The office is on floor 4",
                "The office is on floor 5 now",
                true,
            ),
            (
                "Alice works at Acme as an engineer",
                "At Acme, Alice is an engineer",
                true,
            ),
            (
                "My favourite editor is vim",
                "My favourite editor is helix",
                true,
            ),
            (
                "Test record number 3, marker 9b00e4, for the bulk import",
                "Test record number 4, marker 80d252, for the bulk import",
                false,
            ),
            (
                "Alice's phone number is 555-1234",
                "Bob's phone number is 555-1234",
                false,
            ),
            (
                "The staging server is srv-a12",
                "The staging server is srv-b7",
                false,
            ),
            ("Anna lives in Berlin", "Anna lives in Lisbon", false),
            (
                "Order 1001 shipped on Monday",
                "Order 1002 shipped on Tuesday",
                false,
            ),
        ];
        for (old, new, same) in pairs {
            assert_eq!(same_fact(old, new), same, "{old:?} -> {new:?}");
        }
    }

    // --- choose_neighbours ---

    const THRESHOLDS: NeighbourThresholds = NeighbourThresholds {
        duplicate_threshold: 0.9,
        link_threshold: 0.45,
        max_links: 3,
    };

    /// Chooses among memories with `similarities` (best first) and expects the near-duplicate
    /// and links at these positions of the input.
    fn check_neighbours(
        similarities: &[f32],
        thresholds: NeighbourThresholds,
        near_duplicate: Option<usize>,
        links: &[usize],
    ) {
        let similar: Vec<SimilarMemory> = similarities
            .iter()
            .map(|&similarity| SimilarMemory {
                id: MemoryId::new(),
                similarity,
            })
            .collect();
        let expected = Neighbours {
            near_duplicate: near_duplicate.map(|i| similar[i]),
            links: links.iter().map(|&i| similar[i]).collect(),
        };
        assert_eq!(
            choose_neighbours(&similar, &thresholds),
            expected,
            "{similarities:?} with {thresholds:?}"
        );
    }

    #[test]
    fn neighbours_are_a_near_duplicate_and_links() {
        let at_most = |max_links| NeighbourThresholds {
            max_links,
            ..THRESHOLDS
        };
        // Nothing similar: nothing to merge into or link to.
        check_neighbours(&[], THRESHOLDS, None, &[]);
        // The best above the duplicate threshold is merged into, the others linked.
        check_neighbours(&[0.95, 0.6, 0.5], THRESHOLDS, Some(0), &[1, 2]);
        // Exactly at the duplicate threshold is a near-duplicate; just below, a link.
        check_neighbours(&[0.9], THRESHOLDS, Some(0), &[]);
        check_neighbours(&[0.899_99], THRESHOLDS, None, &[0]);
        // Only the best can be the near-duplicate: a second one above the threshold is linked.
        check_neighbours(&[0.95, 0.92], THRESHOLDS, Some(0), &[1]);
        // Exactly at the link threshold is linked; below, not even considered.
        check_neighbours(&[0.8, 0.45, 0.449_99], THRESHOLDS, None, &[0, 1]);
        check_neighbours(&[0.3, 0.2], THRESHOLDS, None, &[]);
        // At most max_links links, the most similar first, besides the near-duplicate.
        check_neighbours(&[0.8, 0.7, 0.6, 0.5], at_most(2), None, &[0, 1]);
        check_neighbours(&[0.95, 0.8, 0.7, 0.6], at_most(2), Some(0), &[1, 2]);
        check_neighbours(&[0.95, 0.8, 0.7, 0.6], THRESHOLDS, Some(0), &[1, 2, 3]);
        check_neighbours(&[0.95, 0.8], at_most(0), Some(0), &[]);
        check_neighbours(&[0.8], at_most(0), None, &[]);
        // A near-duplicate needs the link threshold too (the search returns no less similar
        // memory), whatever the duplicate threshold says.
        let low_duplicates = NeighbourThresholds {
            duplicate_threshold: 0.35,
            ..THRESHOLDS
        };
        check_neighbours(&[0.4, 0.3], low_duplicates, None, &[]);
        check_neighbours(&[0.5, 0.4], low_duplicates, Some(0), &[]);
    }

    #[test]
    fn a_search_is_asked_for_a_near_duplicate_and_every_link() {
        assert_eq!(THRESHOLDS.candidates_wanted(), 4);
        let none = NeighbourThresholds {
            max_links: 0,
            ..THRESHOLDS
        };
        assert_eq!(none.candidates_wanted(), 1);
        let unbounded = NeighbourThresholds {
            max_links: usize::MAX,
            ..THRESHOLDS
        };
        assert_eq!(unbounded.candidates_wanted(), usize::MAX);
    }

    // --- subject_candidates, subject_links ---

    fn similar(similarities: &[f32]) -> Vec<SimilarMemory> {
        similarities
            .iter()
            .map(|&similarity| SimilarMemory {
                id: MemoryId::new(),
                similarity,
            })
            .collect()
    }

    #[test]
    fn memories_sharing_a_subject_fill_the_links_left() {
        let found = similar(&[0.2, 0.5, 0.1, 0.3, 0.4, 0.35]);
        // The near-duplicate and a memory linked already are not read again; repeats neither.
        let neighbours = Neighbours {
            near_duplicate: Some(found[1]),
            links: vec![found[3]],
        };
        let mut hits = found.clone();
        hits.insert(1, found[0]);
        let candidates = subject_candidates(&hits, &neighbours, &THRESHOLDS);
        assert_eq!(candidates, [found[0], found[2], found[4], found[5]]);
        // The most similar of the confirmed first, within the budget of two.
        let links = subject_links(vec![found[0], found[2], found[4]], &neighbours, &THRESHOLDS);
        assert_eq!(links, [found[4], found[0]]);
        // Equally similar: the search's order (newer first) decides.
        let tied = similar(&[0.0, 0.0, 0.0]);
        let links = subject_links(tied.clone(), &Neighbours::default(), &THRESHOLDS);
        assert_eq!(links, tied[..2]);
        // Links chosen by similarity come first: with max_links 3 and two of them, one more.
        let two = Neighbours {
            near_duplicate: None,
            links: similar(&[0.9, 0.8]),
        };
        assert_eq!(subject_links(found.clone(), &two, &THRESHOLDS).len(), 1);
        // Full: nothing is even read.
        let full = Neighbours {
            near_duplicate: None,
            links: similar(&[0.9, 0.8, 0.7]),
        };
        assert!(subject_candidates(&found, &full, &THRESHOLDS).is_empty());
        assert!(subject_links(found, &full, &THRESHOLDS).is_empty());
    }

    // --- decide ---

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, minute, 0).unwrap()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A stored memory, last changed at minute 0.
    fn stored(content: &str, tags: &[&str], history: Vec<EvolutionEvent>) -> Memory {
        Memory {
            id: MemoryId::new(),
            content: content.to_owned(),
            tags: strings(tags),
            category: "places".to_owned(),
            context: "A places memory about paris.".to_owned(),
            keywords: strings(&["paris"]),
            links: Vec::new(),
            evolution_history: history,
            evolution_history_dropped: 0,
            observed_at: at(0),
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn old_update(old_content: &str) -> EvolutionEvent {
        EvolutionEvent::ContentUpdate {
            old_content: old_content.to_owned(),
            timestamp: at(0),
        }
    }

    fn new_memory(content: &str, tags: &[&str]) -> NewMemory {
        NewMemory {
            content: content.to_owned(),
            tags: strings(tags),
            category: "facts".to_owned(),
            observed_at: None,
        }
    }

    const NOW: u32 = 30;

    /// Decides for `new` (keywords `home`, `paris`; context "ctx") and expects `expected`. A
    /// created memory's id is new, so it is compared apart: it must differ from the stored ones.
    fn check_decision(
        case: &str,
        new: &NewMemory,
        exact_duplicate: Option<Memory>,
        near_duplicate: Option<(Memory, f32)>,
        limits: &Limits,
        expected: IngestDecision,
    ) {
        let keywords = strings(&["home", "paris"]);
        let incoming = IncomingMemory {
            new,
            keywords: &keywords,
            context: "ctx",
        };
        let stored_ids: Vec<MemoryId> = exact_duplicate
            .iter()
            .chain(near_duplicate.iter().map(|(memory, _)| memory))
            .map(|memory| memory.id)
            .collect();
        let mut got = decide(incoming, exact_duplicate, near_duplicate, limits, at(NOW));
        if let IngestDecision::Create { memory } = &mut got {
            assert!(!stored_ids.contains(&memory.id), "{case}: reused an id");
            if let IngestDecision::Create { memory: wanted } = &expected {
                memory.id = wanted.id;
            }
        }
        assert_eq!(got, expected, "{case}");
    }

    #[test]
    fn a_memory_like_no_other_is_created() {
        let new = new_memory("User lives in Paris", &["home"]);
        let expected = Memory {
            id: MemoryId::new(),
            content: "User lives in Paris".to_owned(),
            tags: strings(&["home"]),
            category: "facts".to_owned(),
            context: "ctx".to_owned(),
            keywords: strings(&["home", "paris"]),
            links: Vec::new(),
            evolution_history: Vec::new(),
            evolution_history_dropped: 0,
            observed_at: at(NOW),
            created_at: at(NOW),
            updated_at: at(NOW),
        };
        let decision = IngestDecision::Create {
            memory: expected.clone(),
        };
        assert_eq!(decision.action(), IngestAction::Created);
        assert_eq!(
            decision.usage_growth(),
            Some(UsageGrowth {
                memories: 1,
                // The content and its empty history, "[]".
                bytes: 19 + 2,
            })
        );
        check_decision(
            "nothing similar",
            &new,
            None,
            None,
            &Limits::default(),
            decision,
        );
    }

    /// A merge into a stored memory: what it held, what came, and what it holds after.
    struct MergeCase<'a> {
        case: &'a str,
        content: &'a str,
        tags: &'a [&'a str],
        history: Vec<EvolutionEvent>,
        new_content: &'a str,
        new_tags: &'a [&'a str],
        limits: Limits,
        tags_after: &'a [&'a str],
        history_after: Vec<EvolutionEvent>,
        dropped_after: u64,
    }

    impl MergeCase<'_> {
        /// The stored memory, and the one expected after the merge (its texts unchanged).
        fn memories(&self) -> (Memory, Memory) {
            let existing = stored(self.content, self.tags, self.history.clone());
            let mut expected = existing.clone();
            expected.tags = strings(self.tags_after);
            expected.evolution_history = self.history_after.clone();
            expected.evolution_history_dropped = self.dropped_after;
            (existing, expected)
        }
    }

    fn with_max_tags(max_tags: usize) -> Limits {
        Limits {
            max_tags,
            ..Limits::default()
        }
    }

    fn with_max_history(max_history_entries: usize) -> Limits {
        Limits {
            max_history_entries,
            ..Limits::default()
        }
    }

    #[test]
    fn an_exact_duplicate_gains_the_new_tags() {
        let merge = |tags: &[&str]| EvolutionEvent::Merge {
            merged_tags: strings(tags),
            timestamp: at(NOW),
        };
        // The new content normalises to the stored one: it is the same memory.
        let (content, new_content) = ("User lives in Paris", "user lives in  paris");
        // (case, tags added?)
        let cases = [
            (
                MergeCase {
                    case: "new tags are added in order and recorded",
                    content,
                    tags: &["home"],
                    history: vec![],
                    new_content,
                    new_tags: &["city", "home", "france"],
                    limits: Limits::default(),
                    tags_after: &["home", "city", "france"],
                    history_after: vec![merge(&["city", "france"])],
                    dropped_after: 0,
                },
                true,
            ),
            (
                MergeCase {
                    case: "no new tag: nothing changes",
                    content,
                    tags: &["home", "city"],
                    history: vec![old_update("v0")],
                    new_content,
                    new_tags: &["city"],
                    limits: Limits::default(),
                    tags_after: &["home", "city"],
                    history_after: vec![old_update("v0")],
                    dropped_after: 0,
                },
                false,
            ),
            (
                MergeCase {
                    case: "no tag at all: nothing changes",
                    content,
                    tags: &[],
                    history: vec![],
                    new_content,
                    new_tags: &[],
                    limits: Limits::default(),
                    tags_after: &[],
                    history_after: vec![],
                    dropped_after: 0,
                },
                false,
            ),
            (
                MergeCase {
                    case: "tags stop at max_tags",
                    content,
                    tags: &["a", "b"],
                    history: vec![],
                    new_content,
                    new_tags: &["c", "d", "e"],
                    limits: with_max_tags(3),
                    tags_after: &["a", "b", "c"],
                    history_after: vec![merge(&["c"])],
                    dropped_after: 0,
                },
                true,
            ),
            (
                MergeCase {
                    case: "at max_tags already: nothing changes",
                    content,
                    tags: &["a", "b", "c"],
                    history: vec![],
                    new_content,
                    new_tags: &["d"],
                    limits: with_max_tags(3),
                    tags_after: &["a", "b", "c"],
                    history_after: vec![],
                    dropped_after: 0,
                },
                false,
            ),
            (
                MergeCase {
                    case: "history keeps the newest entries and counts the rest",
                    content,
                    tags: &["a"],
                    history: vec![old_update("v0"), old_update("v1")],
                    new_content,
                    new_tags: &["b"],
                    limits: with_max_history(2),
                    tags_after: &["a", "b"],
                    history_after: vec![old_update("v1"), merge(&["b"])],
                    dropped_after: 1,
                },
                true,
            ),
        ];
        for (case, tags_added) in cases {
            let (existing, mut expected) = case.memories();
            if tags_added {
                expected.updated_at = at(NOW);
            }
            let decision = IngestDecision::ExactDuplicate {
                memory: expected,
                tags_added,
            };
            assert_eq!(decision.action(), IngestAction::Merged, "{}", case.case);
            assert_eq!(decision.usage_growth(), None, "{}", case.case);
            // A near-duplicate found as well changes nothing: the exact duplicate wins.
            let near = stored("The user's home is Paris", &["x"], vec![]);
            check_decision(
                case.case,
                &new_memory(case.new_content, case.new_tags),
                Some(existing),
                Some((near, 0.97)),
                &case.limits,
                decision,
            );
        }
    }

    #[test]
    fn the_observation_time_is_the_callers_or_now_and_a_merge_keeps_the_later() {
        let keywords = strings(&["paris"]);
        let decide_for = |observed_at: Option<DateTime<Utc>>, near: Option<(Memory, f32)>| {
            let new = NewMemory {
                observed_at,
                ..new_memory("User lives in Paris", &[])
            };
            let incoming = IncomingMemory {
                new: &new,
                keywords: &keywords,
                context: "ctx",
            };
            decide(incoming, None, near, &Limits::default(), at(NOW))
                .memory()
                .observed_at
        };
        assert_eq!(decide_for(None, None), at(NOW), "not given: now");
        assert_eq!(decide_for(Some(at(5)), None), at(5), "given: kept");
        let mut older = stored("The user lives in Paris", &[], vec![]);
        older.observed_at = at(10);
        assert_eq!(
            decide_for(Some(at(5)), Some((older.clone(), 0.95))),
            at(10),
            "an older restatement leaves the later observation"
        );
        assert_eq!(decide_for(Some(at(20)), Some((older, 0.95))), at(20));
    }

    #[test]
    fn a_near_duplicate_takes_the_new_wording_and_keeps_the_old() {
        let merged =
            |old: &str, similarity: f32, tags: &[&str]| EvolutionEvent::NearDuplicateMerge {
                old_content: old.to_owned(),
                similarity,
                merged_tags: strings(tags),
                timestamp: at(NOW),
            };
        let long = "x".repeat(300);
        // (case, similarity)
        let cases = [
            (
                MergeCase {
                    case: "new wording wins, old wording and new tags recorded",
                    content: "User lives in Paris",
                    tags: &["home"],
                    history: vec![],
                    new_content: "The user's home is in Paris",
                    new_tags: &["city", "home"],
                    limits: Limits::default(),
                    tags_after: &["home", "city"],
                    history_after: vec![merged("User lives in Paris", 0.93, &["city"])],
                    dropped_after: 0,
                },
                0.93,
            ),
            (
                MergeCase {
                    case: "recorded even without new tags, at the threshold's similarity",
                    content: "User lives in Paris",
                    tags: &["home"],
                    history: vec![old_update("v0")],
                    new_content: "The user's home is in Paris",
                    new_tags: &["home"],
                    limits: Limits::default(),
                    tags_after: &["home"],
                    history_after: vec![old_update("v0"), merged("User lives in Paris", 0.9, &[])],
                    dropped_after: 0,
                },
                0.9,
            ),
            (
                MergeCase {
                    case: "tags stop at max_tags",
                    content: "User lives in Paris",
                    tags: &["home"],
                    history: vec![],
                    new_content: "The user's home is in Paris",
                    new_tags: &["city", "france"],
                    limits: with_max_tags(2),
                    tags_after: &["home", "city"],
                    history_after: vec![merged("User lives in Paris", 0.95, &["city"])],
                    dropped_after: 0,
                },
                0.95,
            ),
            (
                MergeCase {
                    case: "history keeps the newest entries and counts the rest",
                    content: "User lives in Paris",
                    tags: &[],
                    history: vec![old_update(&long)],
                    new_content: "Paris is home",
                    new_tags: &[],
                    limits: with_max_history(1),
                    tags_after: &[],
                    history_after: vec![merged("User lives in Paris", 0.91, &[])],
                    dropped_after: 1,
                },
                0.91,
            ),
        ];
        for (case, similarity) in cases {
            let (existing, mut expected) = case.memories();
            expected.content = case.new_content.to_owned();
            // Keywords and context follow the new wording; the context keeps the stored
            // memory's own category, not the new memory's.
            expected.keywords = strings(&["home", "paris"]);
            expected.context = plain_context("places", case.new_content);
            expected.updated_at = at(NOW);
            expected.observed_at = at(NOW);
            let grown_bytes = signed(expected.stored_bytes()) - signed(existing.stored_bytes());
            let decision = IngestDecision::NearDuplicate {
                memory: expected,
                grown_bytes,
            };
            assert_eq!(decision.action(), IngestAction::Merged, "{}", case.case);
            assert_eq!(
                decision.usage_growth(),
                Some(UsageGrowth {
                    memories: 0,
                    bytes: grown_bytes,
                }),
                "{}",
                case.case
            );
            check_decision(
                case.case,
                &new_memory(case.new_content, case.new_tags),
                None,
                Some((existing, similarity)),
                &case.limits,
                decision,
            );
        }
    }

    #[test]
    fn a_near_duplicate_counts_its_growth_in_stored_bytes() {
        let new = new_memory("Paris is home", &[]);
        let keywords = strings(&["home", "paris"]);
        let incoming = IncomingMemory {
            new: &new,
            keywords: &keywords,
            context: "ctx",
        };
        let grown = |existing: Memory, limits: &Limits| match decide(
            incoming,
            None,
            Some((existing, 0.95)),
            limits,
            at(NOW),
        ) {
            IngestDecision::NearDuplicate { grown_bytes, .. } => grown_bytes,
            other => panic!("not a near-duplicate merge: {other:?}"),
        };
        // The old wording moves to history: the memory grows by the new content and the entry.
        let entry = serde_json::to_string(&[EvolutionEvent::NearDuplicateMerge {
            old_content: "User lives in Paris".to_owned(),
            similarity: 0.95,
            merged_tags: vec![],
            timestamp: at(NOW),
        }])
        .unwrap();
        assert_eq!(
            grown(
                stored("User lives in Paris", &[], vec![]),
                &Limits::default()
            ),
            ("Paris is home".len() + entry.len()) as i64 - ("User lives in Paris".len() + 2) as i64
        );
        // A long entry pushed out of a full history: the memory shrinks.
        let one_entry = Limits {
            max_history_entries: 1,
            ..Limits::default()
        };
        let long = stored(
            "User lives in Paris",
            &[],
            vec![old_update(&"x".repeat(300))],
        );
        assert!(grown(long, &one_entry) < -200);
    }

    // --- link_targets ---

    /// Links memory number `memory` (of five) to the `targets` among them while only `stored`
    /// ones exist, and expects links to `expected`.
    fn check_links(memory: usize, targets: &[usize], stored: &[usize], expected: &[usize]) {
        let ids: Vec<MemoryId> = (0..5).map(|_| MemoryId::new()).collect();
        let pick =
            |positions: &[usize]| -> Vec<MemoryId> { positions.iter().map(|&i| ids[i]).collect() };
        let still_stored: HashSet<MemoryId> = pick(stored).into_iter().collect();
        assert_eq!(
            link_targets(ids[memory], &pick(targets), &still_stored),
            pick(expected),
            "memory {memory}, targets {targets:?}, stored {stored:?}"
        );
    }

    #[test]
    fn links_go_to_targets_still_stored_other_than_the_memory() {
        let all = [0, 1, 2, 3, 4];
        check_links(0, &[], &all, &[]);
        // Every target, in the order given.
        check_links(0, &[3, 1, 2], &all, &[3, 1, 2]);
        // Not to itself (an exact duplicate merged into may be among the targets).
        check_links(1, &[0, 1, 2], &all, &[0, 2]);
        // Not to one deleted since it was chosen.
        check_links(0, &[1, 2, 3], &[0, 1, 3], &[1, 3]);
        check_links(0, &[1, 2], &[0], &[]);
        check_links(0, &[1, 2], &[], &[]);
    }
}
