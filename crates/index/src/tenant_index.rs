//! One tenant's index: documents in slots, a lexical and a dense index over them, and the
//! searches that combine either with the caller's tag filter.
//!
//! Why slots: both indexes refer to documents by a small integer rather than by id, so postings
//! and vector rows stay compact; a removed document's slot is reused by the next insert.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;

use membrain_memory::MemoryId;

use crate::dense::{self, VectorStore};
use crate::lexical::InvertedIndex;
use crate::top_k::{Ranked, TopK};
use crate::{Document, Scored};

/// The quantised scan keeps `k × RESCORE_FACTOR` candidates (at least [`RESCORE_MIN`]) for exact
/// rescoring; the tests show that on random vectors this returns the exact top 10.
const RESCORE_FACTOR: usize = 10;
const RESCORE_MIN: usize = 100;

/// What [`TenantIndex::upsert`] did with a document's embedding. The document itself is always
/// indexed; a vector that is not indexed leaves it lexical-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorStatus {
    /// The embedding is searchable by [`TenantIndex::dense`].
    Indexed,
    /// The document had no embedding.
    Absent,
    /// The embedding had `found` components where the index has `expected` (an index of zero
    /// dimensions takes no vectors).
    WrongLength { expected: usize, found: usize },
    /// The embedding held NaN or an infinity.
    NotFinite,
}

impl VectorStatus {
    pub fn is_indexed(self) -> bool {
        self == Self::Indexed
    }
}

#[derive(Debug)]
struct Slot {
    id: MemoryId,
    tags: Vec<String>,
    observed_at: i64,
    vector_row: Option<usize>,
}

/// A filter on what a document is tagged with and when it was observed (microseconds since the
/// epoch), applied before the best `k` are chosen.
pub type DocumentFilter<'a> = &'a dyn Fn(&[String], i64) -> bool;

/// One tenant's documents, searchable by BM25 and by cosine similarity.
///
/// Invariant: every id in `slot_of` names a slot whose document is in `lexical` (and in
/// `vectors` if it has a row); free slots are in neither.
pub struct TenantIndex {
    dimensions: usize,
    slot_of: HashMap<MemoryId, u32>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    lexical: InvertedIndex,
    vectors: VectorStore,
    /// Every document by (observation time, id): the order in which its facts were observed,
    /// ids (time-ordered) breaking ties in the order they were stored.
    timeline: BTreeSet<(i64, MemoryId)>,
}

impl fmt::Debug for TenantIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Sizes only: the documents are a tenant's private memories.
        f.debug_struct("TenantIndex")
            .field("dimensions", &self.dimensions)
            .field("documents", &self.len())
            .field("vectors", &self.vectors.len())
            .field("free_slots", &self.free_slots.len())
            .field("terms", &self.lexical.term_count())
            .field("postings", &self.lexical.posting_count())
            .finish()
    }
}

impl TenantIndex {
    /// An empty index for embeddings of `dimensions` components.
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            slot_of: HashMap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            lexical: InvertedIndex::default(),
            vectors: VectorStore::new(dimensions),
            timeline: BTreeSet::new(),
        }
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Documents held.
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Roughly the heap bytes this index holds (texts are not kept: postings, vectors, tags and
    /// bookkeeping), so a process can keep its indexes within a memory budget.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let slots: usize = self
            .slots
            .iter()
            .map(|slot| {
                size_of::<Slot>()
                    + slot
                        .tags
                        .iter()
                        .map(|tag| size_of::<String>() + tag.capacity())
                        .sum::<usize>()
            })
            .sum();
        slots
            + self.slot_of.capacity() * (size_of::<MemoryId>() + size_of::<u32>() + 8)
            + self.free_slots.capacity() * size_of::<u32>()
            + self.lexical.heap_bytes()
            + self.vectors.heap_bytes()
            // A B-tree entry and its share of node overhead.
            + self.timeline.len() * (size_of::<(i64, MemoryId)>() + 8)
    }

    /// Documents with an indexed embedding.
    pub fn vector_count(&self) -> usize {
        self.vectors.len()
    }

    pub fn contains(&self, id: MemoryId) -> bool {
        self.slot_of.contains_key(&id)
    }

    /// The ids held, in no particular order (to reconcile the index with the database).
    pub fn ids(&self) -> impl Iterator<Item = MemoryId> + '_ {
        self.slot_of.keys().copied()
    }

    /// Adds or replaces the document with this id (text, tags and vector all replaced). An
    /// embedding of the wrong length or with non-finite values is not indexed and the document
    /// stays lexical-only; the returned status says which.
    pub fn upsert(&mut self, document: Document) -> VectorStatus {
        let Document {
            id,
            text,
            tags,
            embedding,
            observed_at,
        } = document;
        self.remove(id);
        let status = match &embedding {
            None => VectorStatus::Absent,
            Some(v) if v.len() != self.dimensions || self.dimensions == 0 => {
                VectorStatus::WrongLength {
                    expected: self.dimensions,
                    found: v.len(),
                }
            }
            Some(v) if !v.iter().all(|x| x.is_finite()) => VectorStatus::NotFinite,
            Some(_) => VectorStatus::Indexed,
        };
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                // Slots are u32 to keep postings small; no tenant holds four billion memories.
                self.slots.push(Slot {
                    id,
                    tags: Vec::new(),
                    observed_at,
                    vector_row: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.lexical.insert(slot, &text);
        let vector_row = match embedding {
            Some(v) if status.is_indexed() => Some(self.vectors.push(slot, &v)),
            _ => None,
        };
        self.slots[slot as usize] = Slot {
            id,
            tags,
            observed_at,
            vector_row,
        };
        self.slot_of.insert(id, slot);
        self.timeline.insert((observed_at, id));
        status
    }

    /// Removes the document with this id; false if there was none.
    pub fn remove(&mut self, id: MemoryId) -> bool {
        let Some(slot) = self.slot_of.remove(&id) else {
            return false;
        };
        let entry = &mut self.slots[slot as usize];
        entry.tags = Vec::new();
        self.timeline.remove(&(entry.observed_at, id));
        if let Some(row) = entry.vector_row.take()
            && let Some(moved) = self.vectors.swap_remove(row)
        {
            self.slots[moved as usize].vector_row = Some(row);
        }
        self.lexical.remove(slot);
        self.free_slots.push(slot);
        true
    }

    pub fn tags(&self, id: MemoryId) -> Option<&[String]> {
        let slot = self.slot_of.get(&id)?;
        Some(&self.slots[*slot as usize].tags)
    }

    /// The documents observed just before and just after `id` (at most `reach` each way, each
    /// within `window` microseconds of the one before it on the way), with their distance in
    /// steps: the memories of the same episode, such as the turns around one in a conversation.
    pub fn episode_neighbours(
        &self,
        id: MemoryId,
        reach: usize,
        window: i64,
    ) -> Vec<(MemoryId, usize)> {
        let Some(at) = self.observed_at(id) else {
            return Vec::new();
        };
        let key = (at, id);
        let mut later = self
            .timeline
            .range((Bound::Excluded(key), Bound::Unbounded));
        let mut earlier = self
            .timeline
            .range((Bound::Unbounded, Bound::Excluded(key)))
            .rev();
        let mut neighbours = Vec::new();
        for side in [&mut later as &mut dyn Iterator<Item = _>, &mut earlier] {
            // Each step must be within the window of the one before it.
            let mut last = at;
            for (step, &(time, other)) in side.take(reach).enumerate() {
                if (time - last).abs() > window {
                    break;
                }
                neighbours.push((other, step + 1));
                last = time;
            }
        }
        neighbours
    }

    /// The mean cosine similarity of `vector` with every indexed embedding: what a memory's
    /// similarity to another must exceed to say more than that both belong to this tenant.
    /// `None` with no embeddings, or for a vector of the wrong length or of zeros.
    pub fn mean_cosine(&self, vector: &[f32]) -> Option<f32> {
        if vector.len() != self.dimensions {
            return None;
        }
        self.vectors.mean_cosine(vector)
    }

    /// This document's length in the terms BM25 counts (stemmed words, stop words left out).
    pub fn term_count(&self, id: MemoryId) -> Option<usize> {
        let slot = self.slot_of.get(&id)?;
        Some(self.lexical.document_length(*slot) as usize)
    }

    /// When this document's fact was observed (microseconds since the epoch).
    pub fn observed_at(&self, id: MemoryId) -> Option<i64> {
        let slot = self.slot_of.get(&id)?;
        Some(self.slots[*slot as usize].observed_at)
    }

    /// The indexed embedding of this document, if it has one.
    pub fn vector(&self, id: MemoryId) -> Option<&[f32]> {
        let slot = self.slot_of.get(&id)?;
        let row = self.slots[*slot as usize].vector_row?;
        Some(self.vectors.row(row))
    }

    /// BM25 over the documents' text, best first, at most `k`, every score > 0 and normalised
    /// to 0..=1 by the best one. Documents whose tags fail `filter` are skipped before the best
    /// `k` are chosen. Equal scores put the newer id first. Collection statistics (document
    /// count, average length, document frequencies) are those of the whole tenant.
    pub fn lexical(
        &self,
        query: &str,
        filter: &dyn Fn(&[String]) -> bool,
        k: usize,
    ) -> Vec<Scored> {
        self.lexical_where(query, &|tags, _| filter(tags), k)
    }

    /// [`lexical`](Self::lexical) with a filter on tags and observation time.
    pub fn lexical_where(&self, query: &str, filter: DocumentFilter<'_>, k: usize) -> Vec<Scored> {
        if k == 0 {
            return Vec::new();
        }
        let mut top = TopK::new(k);
        for (slot, score) in self.lexical.score(query) {
            let entry = &self.slots[slot as usize];
            let candidate = Ranked {
                score,
                tie: entry.id,
            };
            // The filter may run a user's regexes: only ask it about documents that would place.
            if top.would_accept(&candidate) && filter(&entry.tags, entry.observed_at) {
                top.push(candidate);
            }
        }
        let ranked = top.into_sorted_vec();
        let best = ranked.first().map_or(1.0, |r| r.score);
        ranked
            .into_iter()
            .map(|r| Scored {
                id: r.tie,
                score: r.score / best,
            })
            .collect()
    }

    /// Cosine similarity (the dot product: stored and query vectors are unit length), best
    /// first, at most `k`, only scores ≥ `min_score`. Documents whose tags fail `filter` are
    /// skipped before the best `k` are chosen. Equal scores put the newer id first. A query of
    /// the wrong length, or with non-finite values, finds nothing.
    ///
    /// The scan compares an 8-bit copy of every vector, keeps the best `10 × k` (at least 100)
    /// that pass the filter, and ranks those by their exact `f32` score.
    pub fn dense(
        &self,
        query: &[f32],
        filter: &dyn Fn(&[String]) -> bool,
        k: usize,
        min_score: f32,
    ) -> Vec<Scored> {
        self.dense_where(query, &|tags, _| filter(tags), k, min_score)
    }

    /// [`dense`](Self::dense) with a filter on tags and observation time.
    pub fn dense_where(
        &self,
        query: &[f32],
        filter: DocumentFilter<'_>,
        k: usize,
        min_score: f32,
    ) -> Vec<Scored> {
        if !self.is_query(query) || k == 0 {
            return Vec::new();
        }
        let scores = self.vectors.approximate_scores(query);
        let mut candidates = TopK::new(k.saturating_mul(RESCORE_FACTOR).max(RESCORE_MIN));
        for (row, score) in scores.into_iter().enumerate() {
            // Most rows fall below the heap's least score: reject them with one comparison.
            if candidates.floor().is_some_and(|floor| score < floor) {
                continue;
            }
            // Ties between approximate scores go to the lower row: arbitrary but deterministic.
            let candidate = Ranked {
                score,
                tie: std::cmp::Reverse(row),
            };
            if candidates.would_accept(&candidate) && self.row_passes(row, filter) {
                candidates.push(candidate);
            }
        }
        let mut top = TopK::new(k);
        for candidate in candidates.into_sorted_vec() {
            let row = candidate.tie.0;
            let score = self.vectors.exact_score(row, query);
            if score >= min_score {
                top.push(Ranked {
                    score,
                    tie: self.row_id(row),
                });
            }
        }
        into_scored(top)
    }

    /// [`dense`](Self::dense) without quantisation: every vector scored exactly in `f32`. About
    /// four times slower at 100,000 vectors; the reference the quantised scan is tested against.
    pub fn dense_exact(
        &self,
        query: &[f32],
        filter: &dyn Fn(&[String]) -> bool,
        k: usize,
        min_score: f32,
    ) -> Vec<Scored> {
        if !self.is_query(query) || k == 0 {
            return Vec::new();
        }
        let mut top = TopK::new(k);
        for row in 0..self.vectors.len() {
            let score = dense::dot(self.vectors.row(row), query);
            if score < min_score {
                continue;
            }
            let candidate = Ranked {
                score,
                tie: self.row_id(row),
            };
            if top.would_accept(&candidate) && self.row_passes(row, &|tags, _| filter(tags)) {
                top.push(candidate);
            }
        }
        into_scored(top)
    }

    fn is_query(&self, query: &[f32]) -> bool {
        self.dimensions > 0 && query.len() == self.dimensions && query.iter().all(|x| x.is_finite())
    }

    fn row_id(&self, row: usize) -> MemoryId {
        self.slots[self.vectors.slot(row) as usize].id
    }

    fn row_passes(&self, row: usize, filter: DocumentFilter<'_>) -> bool {
        let slot = &self.slots[self.vectors.slot(row) as usize];
        filter(&slot.tags, slot.observed_at)
    }
}

fn into_scored(top: TopK<Ranked<MemoryId>>) -> Vec<Scored> {
    top.into_sorted_vec()
        .into_iter()
        .map(|r| Scored {
            id: r.tie,
            score: r.score,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use membrain_memory::lexical::rank_bm25;

    use super::*;

    fn id(n: u64) -> MemoryId {
        MemoryId::parse_field(&format!("00000000-0000-7000-8000-{n:012x}"), "id")
            .expect("valid test id")
    }

    fn doc(n: u64, text: &str, tags: &[&str], embedding: Option<Vec<f32>>) -> Document {
        Document {
            id: id(n),
            text: text.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            embedding,
            // Observed in the order of the ids, one second apart.
            observed_at: n as i64 * 1_000_000,
        }
    }

    fn any(_: &[String]) -> bool {
        true
    }

    fn ids(hits: &[Scored]) -> Vec<MemoryId> {
        hits.iter().map(|h| h.id).collect()
    }

    /// A small deterministic generator (SplitMix64), so tests need no dependency.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Uniform in (0, 1].
        fn unit(&mut self) -> f64 {
            ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
        }

        fn unit_vector(&mut self, dimensions: usize) -> Vec<f32> {
            let v: Vec<f64> = (0..dimensions)
                .map(|_| {
                    let (u, w) = (self.unit(), self.unit());
                    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * w).cos()
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.iter().map(|x| (x / norm) as f32).collect()
        }

        fn text(&mut self, words: usize) -> String {
            (0..words)
                .map(|_| format!("w{}", self.below(40)))
                .collect::<Vec<_>>()
                .join(" ")
        }
    }

    #[test]
    fn upsert_replace_remove() {
        enum Op {
            Upsert(Document),
            Remove(u64, bool),
        }
        let mut index = TenantIndex::new(2);
        let steps = [
            Op::Upsert(doc(1, "coffee", &["a"], Some(vec![1.0, 0.0]))),
            Op::Upsert(doc(2, "tea", &["b"], None)),
            Op::Upsert(doc(1, "cocoa", &["c"], Some(vec![0.0, 1.0]))),
            Op::Remove(2, true),
            Op::Remove(2, false),
            Op::Upsert(doc(3, "tea", &[], Some(vec![0.6, 0.8]))),
            Op::Upsert(doc(1, "milk", &["d"], None)),
        ];
        for step in steps {
            match step {
                Op::Upsert(d) => {
                    index.upsert(d);
                }
                Op::Remove(n, existed) => assert_eq!(index.remove(id(n)), existed),
            }
        }
        assert_eq!(index.len(), 2);
        assert!(index.contains(id(1)) && index.contains(id(3)) && !index.contains(id(2)));
        assert_eq!(index.tags(id(1)), Some(&["d".to_owned()][..]));
        assert_eq!(index.tags(id(2)), None);
        assert_eq!(index.vector(id(1)), None, "the replacement had no vector");
        assert_eq!(index.vector(id(3)), Some(&[0.6, 0.8][..]));
        assert_eq!(index.vector_count(), 1);
        assert!(index.lexical("coffee cocoa", &any, 10).is_empty());
        assert_eq!(ids(&index.lexical("milk tea", &any, 10)).len(), 2);
        assert_eq!(ids(&index.dense(&[1.0, 0.0], &any, 10, -1.0)), vec![id(3)]);
        let debug = format!("{index:?}");
        assert!(
            debug.contains("documents: 2") && !debug.contains("milk"),
            "{debug}"
        );
    }

    #[test]
    fn term_count_is_the_length_bm25_counts() {
        let mut index = TenantIndex::new(2);
        // Stop words ("the", "and") and one-letter tokens are not terms; repeats are.
        index.upsert(doc(1, "The painted walls and the paints, a b", &[], None));
        assert_eq!(index.term_count(id(1)), Some(3));
        index.upsert(doc(1, "tea", &[], None));
        assert_eq!(index.term_count(id(1)), Some(1), "the replacement's length");
        index.remove(id(1));
        assert_eq!(index.term_count(id(1)), None);
    }

    #[test]
    fn the_where_forms_filter_on_observation_time_before_k() {
        let mut index = TenantIndex::new(2);
        // Observed at seconds 1..=6; the best matches are the latest.
        for n in 1..=6 {
            let words = "tea ".repeat(n as usize);
            index.upsert(doc(
                n,
                &words,
                &["a"],
                Some(vec![n as f32 / 6.0, 1.0 - n as f32 / 6.0]),
            ));
        }
        let early = |_: &[String], at: i64| at <= 2_000_000;
        assert_eq!(ids(&index.lexical_where("tea", &early, 1)), vec![id(2)]);
        assert_eq!(
            ids(&index.dense_where(&[1.0, 0.0], &early, 1, -1.0)),
            vec![id(2)]
        );
        assert_eq!(index.observed_at(id(4)), Some(4_000_000));
        assert_eq!(index.observed_at(id(9)), None);
    }

    #[test]
    fn episode_neighbours_follow_observation_time_within_the_window() {
        let mut index = TenantIndex::new(0);
        // Seconds 1, 2, 3, then 100, 101: two episodes with a gap. `doc(n)` is observed at n s.
        for n in [1, 2, 3, 100, 101] {
            index.upsert(doc(n, "x", &[], None));
        }
        let second = 1_000_000;
        let near_in = |index: &TenantIndex, n: u64, reach: usize| {
            let mut found = index.episode_neighbours(id(n), reach, 10 * second);
            found.sort();
            found
        };
        assert_eq!(near_in(&index, 2, 1), vec![(id(1), 1), (id(3), 1)]);
        assert_eq!(near_in(&index, 1, 2), vec![(id(2), 1), (id(3), 2)]);
        assert_eq!(
            near_in(&index, 3, 2),
            vec![(id(1), 2), (id(2), 1)],
            "the gap ends the episode"
        );
        assert_eq!(near_in(&index, 100, 3), vec![(id(101), 1)]);
        assert!(near_in(&index, 7, 1).is_empty(), "unknown");
        // Re-observed elsewhere in time, a document moves; removed, it leaves.
        index.upsert(Document {
            observed_at: 102 * second,
            ..doc(2, "x", &[], None)
        });
        assert_eq!(near_in(&index, 1, 1), vec![(id(3), 1)]);
        assert_eq!(near_in(&index, 101, 1), vec![(id(2), 1), (id(100), 1)]);
        index.remove(id(3));
        assert!(near_in(&index, 1, 1).is_empty());
    }

    #[test]
    fn heap_bytes_grow_with_documents_and_vectors() {
        let mut rng = Random(7);
        let mut index = TenantIndex::new(64);
        let empty = index.heap_bytes();
        for n in 0..1_000 {
            index.upsert(doc(n, &rng.text(12), &["tag"], Some(rng.unit_vector(64))));
        }
        let full = index.heap_bytes();
        // At least the f32 vectors themselves (1,000 × 64 × 4 bytes), and not wildly more.
        assert!(full - empty >= 1_000 * 64 * 4, "{empty} → {full}");
        assert!(full < 1_000 * 64 * 4 * 8, "{full}");
    }

    #[test]
    fn vector_status() {
        let cases = [
            (2, Some(vec![0.6, 0.8]), VectorStatus::Indexed),
            (2, None, VectorStatus::Absent),
            (
                2,
                Some(vec![1.0]),
                VectorStatus::WrongLength {
                    expected: 2,
                    found: 1,
                },
            ),
            (
                0,
                Some(vec![]),
                VectorStatus::WrongLength {
                    expected: 0,
                    found: 0,
                },
            ),
            (2, Some(vec![f32::NAN, 1.0]), VectorStatus::NotFinite),
        ];
        for (dimensions, embedding, expected) in cases {
            let mut index = TenantIndex::new(dimensions);
            let status = index.upsert(doc(1, "coffee", &[], embedding.clone()));
            assert_eq!(status, expected, "{embedding:?}");
            assert_eq!(index.vector(id(1)).is_some(), expected.is_indexed());
            assert_eq!(index.vector_count(), usize::from(expected.is_indexed()));
            // Lexical-only or not, the document is searchable by text.
            assert_eq!(ids(&index.lexical("coffee", &any, 10)), vec![id(1)]);
        }
    }

    #[test]
    fn wrong_queries_find_nothing() {
        let mut index = TenantIndex::new(2);
        index.upsert(doc(1, "coffee", &[], Some(vec![1.0, 0.0])));
        assert!(index.dense(&[1.0], &any, 10, -1.0).is_empty());
        assert!(index.dense(&[f32::NAN, 0.0], &any, 10, -1.0).is_empty());
        assert!(index.dense(&[1.0, 0.0], &any, 0, -1.0).is_empty());
        assert!(index.dense(&[1.0, 0.0], &any, 10, 1.5).is_empty());
        assert!(index.lexical("coffee", &any, 0).is_empty());
        assert!(index.lexical("", &any, 10).is_empty());
    }

    #[test]
    fn filter_applies_before_k() {
        let mut index = TenantIndex::new(2);
        // The ten best matches are all tagged "hidden"; two weaker ones are "shown".
        for n in 0..10 {
            index.upsert(doc(n, "coffee coffee", &["hidden"], Some(vec![1.0, 0.0])));
        }
        index.upsert(doc(100, "coffee tea", &["shown"], Some(vec![0.6, 0.8])));
        index.upsert(doc(
            101,
            "coffee tea milk",
            &["shown"],
            Some(vec![0.0, 1.0]),
        ));
        let shown = |tags: &[String]| tags.iter().any(|t| t == "shown");
        assert_eq!(
            ids(&index.lexical("coffee", &shown, 2)),
            vec![id(100), id(101)]
        );
        assert_eq!(
            ids(&index.dense(&[1.0, 0.0], &shown, 2, -1.0)),
            vec![id(100), id(101)]
        );
        assert_eq!(
            ids(&index.dense_exact(&[1.0, 0.0], &shown, 2, -1.0)),
            vec![id(100), id(101)]
        );
        let none = |_: &[String]| false;
        assert!(index.lexical("coffee", &none, 2).is_empty());
        assert!(index.dense(&[1.0, 0.0], &none, 2, -1.0).is_empty());
    }

    #[test]
    fn ties_put_newer_ids_first() {
        let mut index = TenantIndex::new(2);
        for n in [3, 1, 2] {
            index.upsert(doc(n, "coffee", &[], Some(vec![1.0, 0.0])));
        }
        let expected = vec![id(3), id(2), id(1)];
        assert_eq!(ids(&index.lexical("coffee", &any, 10)), expected);
        assert_eq!(ids(&index.dense(&[1.0, 0.0], &any, 10, -1.0)), expected);
        assert_eq!(
            ids(&index.dense_exact(&[1.0, 0.0], &any, 10, -1.0)),
            expected
        );
    }

    #[test]
    fn lexical_matches_rank_bm25() {
        let texts = [
            "The user drinks green tea every morning",
            "The user's favourite coffee is a flat white",
            "Coffee gives the user acid reflux; coffee should be cold brew",
            "The cat is called Tom",
            "Tom the cat drinks milk, not coffee",
            "",
            "the of and",
            "Morning runs along the river, then coffee",
        ];
        let queries = [
            "coffee",
            "cat milk",
            "morning coffee tea",
            "the user",
            "river river run",
            "unknown words",
        ];
        let mut index = TenantIndex::new(0);
        for (n, text) in texts.iter().enumerate() {
            index.upsert(doc(n as u64, text, &[], None));
        }
        // rank_bm25 breaks ties by input order, the index by newer id: pass newest first.
        let newest_first: Vec<&str> = texts.iter().rev().copied().collect();
        for query in queries {
            for k in [1, 3, 10] {
                let expected: Vec<(MemoryId, f32)> = rank_bm25(query, &newest_first, k)
                    .iter()
                    .map(|r| (id((texts.len() - 1 - r.index) as u64), r.score))
                    .collect();
                let got = index.lexical(query, &any, k);
                assert_eq!(got.len(), expected.len(), "{query:?} k={k}");
                for (hit, (want_id, want_score)) in got.iter().zip(&expected) {
                    assert_eq!(hit.id, *want_id, "{query:?} k={k}");
                    assert!((hit.score - want_score).abs() < 1e-4, "{query:?} k={k}");
                }
            }
        }
    }

    #[test]
    fn removed_ids_are_never_returned_after_churn() {
        const DIMENSIONS: usize = 8;
        let mut random = Random(7);
        let mut index = TenantIndex::new(DIMENSIONS);
        // The model: what the index should hold.
        let mut live: BTreeMap<u64, (String, Option<Vec<f32>>)> = BTreeMap::new();
        for step in 0..3000 {
            let n = random.below(60);
            if random.below(3) == 0 {
                assert_eq!(index.remove(id(n)), live.remove(&n).is_some());
            } else {
                let words = 1 + random.below(6) as usize;
                let text = random.text(words);
                let vector = (random.below(4) != 0).then(|| random.unit_vector(DIMENSIONS));
                index.upsert(doc(n, &text, &[], vector.clone()));
                live.insert(n, (text, vector));
            }
            if step % 50 != 0 {
                continue;
            }
            assert_eq!(index.len(), live.len());
            let with_vectors = live.values().filter(|(_, v)| v.is_some()).count();
            assert_eq!(index.vector_count(), with_vectors);
            for (n, (_, vector)) in &live {
                assert_eq!(index.vector(id(*n)), vector.as_deref(), "step {step}");
            }

            // Lexical: the same hits as BM25 over exactly the live documents.
            let query = random.text(3);
            let newest_first: Vec<(u64, &str)> = live
                .iter()
                .rev()
                .map(|(n, (t, _))| (*n, t.as_str()))
                .collect();
            let texts: Vec<&str> = newest_first.iter().map(|(_, t)| *t).collect();
            let expected: Vec<MemoryId> = rank_bm25(&query, &texts, 100)
                .iter()
                .map(|r| id(newest_first[r.index].0))
                .collect();
            assert_eq!(
                ids(&index.lexical(&query, &any, 100)),
                expected,
                "step {step}"
            );

            // Dense: every vector, each live, in exact order.
            let query = random.unit_vector(DIMENSIONS);
            let hits = index.dense(&query, &any, 100, -1.0);
            assert_eq!(hits.len(), with_vectors, "step {step}");
            let live_ids: Vec<MemoryId> = live.keys().map(|n| id(*n)).collect();
            assert!(hits.iter().all(|h| live_ids.contains(&h.id)), "step {step}");
            assert_eq!(
                hits,
                index.dense_exact(&query, &any, 100, -1.0),
                "step {step}"
            );
        }
    }

    #[test]
    fn quantised_scan_survives_churn() {
        // More vectors than the rescoring keeps, so the quantised scan really chooses; rows move
        // on every removal, and each live vector must still be found by itself.
        const DIMENSIONS: usize = 16;
        let mut random = Random(11);
        let mut index = TenantIndex::new(DIMENSIONS);
        let mut live: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
        for _ in 0..3000 {
            let n = random.below(500);
            if random.below(4) == 0 {
                assert_eq!(index.remove(id(n)), live.remove(&n).is_some());
            } else {
                let vector = random.unit_vector(DIMENSIONS);
                index.upsert(doc(n, "", &[], Some(vector.clone())));
                live.insert(n, vector);
            }
        }
        assert!(live.len() > RESCORE_MIN * 2, "{} live", live.len());
        let live_ids: Vec<MemoryId> = live.keys().map(|n| id(*n)).collect();
        for (n, vector) in live.iter().step_by(7) {
            let hits = index.dense(vector, &any, 10, -1.0);
            assert_eq!(hits.len(), 10);
            assert_eq!(hits[0].id, id(*n));
            assert!((hits[0].score - 1.0).abs() < 1e-5);
            assert!(hits.iter().all(|h| live_ids.contains(&h.id)));
        }
    }

    #[test]
    fn quantised_top_10_equals_exact_top_10() {
        const DIMENSIONS: usize = 384;
        const DOCUMENTS: u64 = 3000;
        const QUERIES: usize = 200;
        let mut random = Random(42);
        let mut index = TenantIndex::new(DIMENSIONS);
        for n in 0..DOCUMENTS {
            index.upsert(doc(n, "", &[], Some(random.unit_vector(DIMENSIONS))));
        }
        let mut identical = 0;
        for _ in 0..QUERIES {
            let query = random.unit_vector(DIMENSIONS);
            let approximate = index.dense(&query, &any, 10, -1.0);
            let exact = index.dense_exact(&query, &any, 10, -1.0);
            assert_eq!(approximate.len(), 10);
            identical += usize::from(ids(&approximate) == ids(&exact));
        }
        assert!(
            identical * 100 >= QUERIES * 99,
            "{identical} of {QUERIES} identical"
        );
    }
}
