//! The inverted index behind BM25: term → postings of (slot, generation, term frequency), with
//! document lengths and the running totals BM25 needs.
//!
//! Why generations: removing a document would otherwise mean finding it in the posting list of
//! every one of its terms, which is linear in the length of each list. Instead each slot carries
//! a generation that removal bumps; a posting counts only while its generation matches its
//! slot's, so a reused slot never inherits a deleted document's postings. Each term counts its
//! dead postings and drops them once they outnumber the live ones, so garbage stays bounded and
//! the clean-up is amortised over the removals that made it.
//!
//! The scores are bit-for-bit those of `membrain_memory::lexical::rank_bm25` over the same
//! documents (same tokeniser, constants, formula and order of summation), before normalisation.

use std::collections::HashMap;

use membrain_memory::text::terms;

// Must match `membrain_memory::lexical`; the tests compare the two rankings.
const K1: f32 = 1.2;
const B: f32 = 0.75;

/// Dead postings a term tolerates before it is compacted, however few live ones it has.
const COMPACT_MIN_DEAD: u32 = 16;

#[derive(Debug, Clone, Copy)]
struct Posting {
    slot: u32,
    generation: u32,
    term_frequency: u32,
}

#[derive(Debug, Default)]
struct Term {
    text: String,
    postings: Vec<Posting>,
    /// Live documents containing the term: its document frequency.
    live: u32,
    /// Postings whose documents have been removed.
    dead: u32,
}

#[derive(Default)]
pub(crate) struct InvertedIndex {
    term_ids: HashMap<String, u32>,
    terms: Vec<Term>,
    free_terms: Vec<u32>,
    // Per slot; a slot is a document's position, reused after removal.
    generation: Vec<u32>,
    document_length: Vec<u32>,
    /// The distinct terms of the document in each slot, for removal.
    document_terms: Vec<Vec<u32>>,
    documents: usize,
    total_length: u64,
}

impl InvertedIndex {
    /// Distinct terms with at least one live document.
    pub(crate) fn term_count(&self) -> usize {
        self.term_ids.len()
    }

    /// Roughly the heap bytes this index holds (capacities, not just lengths), for memory
    /// budgets.
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let terms: usize = self
            .terms
            .iter()
            .map(|t| {
                size_of::<Term>()
                    + 2 * t.text.capacity()
                    + t.postings.capacity() * size_of::<Posting>()
                    + size_of::<(String, u32)>()
            })
            .sum();
        let documents: usize = self
            .document_terms
            .iter()
            .map(|d| size_of::<Vec<u32>>() + d.capacity() * size_of::<u32>())
            .sum();
        terms
            + documents
            + (self.generation.capacity() + self.document_length.capacity()) * size_of::<u32>()
            + self.free_terms.capacity() * size_of::<u32>()
    }

    /// Postings held, dead ones included.
    pub(crate) fn posting_count(&self) -> usize {
        self.terms.iter().map(|t| t.postings.len()).sum()
    }

    /// The length in terms of the document in `slot` (0 for an empty slot).
    pub(crate) fn document_length(&self, slot: u32) -> u32 {
        self.document_length
            .get(slot as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Indexes `text` as the document in `slot`, which must be empty.
    pub(crate) fn insert(&mut self, slot: u32, text: &str) {
        let index = slot as usize;
        if self.generation.len() <= index {
            self.generation.resize(index + 1, 0);
            self.document_length.resize(index + 1, 0);
            self.document_terms.resize_with(index + 1, Vec::new);
        }
        let mut tokens = terms(text);
        let length = tokens.len();
        tokens.sort_unstable();

        let generation = self.generation[index];
        let mut distinct = Vec::new();
        let mut rest = tokens.as_slice();
        while let Some(first) = rest.first() {
            let run = rest.iter().take_while(|t| *t == first).count();
            let term_id = self.intern(first);
            let term = &mut self.terms[term_id as usize];
            term.postings.push(Posting {
                slot,
                generation,
                term_frequency: run as u32,
            });
            term.live += 1;
            distinct.push(term_id);
            rest = &rest[run..];
        }
        self.document_terms[index] = distinct;
        self.document_length[index] = length as u32;
        self.documents += 1;
        self.total_length += length as u64;
    }

    /// Forgets the document in `slot`, which must hold one.
    pub(crate) fn remove(&mut self, slot: u32) {
        let index = slot as usize;
        self.generation[index] = self.generation[index].wrapping_add(1);
        for term_id in std::mem::take(&mut self.document_terms[index]) {
            let term = &mut self.terms[term_id as usize];
            term.live -= 1;
            term.dead += 1;
            if term.live == 0 {
                self.term_ids.remove(&term.text);
                *term = Term::default();
                self.free_terms.push(term_id);
            } else if term.dead >= COMPACT_MIN_DEAD && term.dead > term.live {
                let generation = &self.generation;
                term.postings
                    .retain(|p| generation[p.slot as usize] == p.generation);
                term.dead = 0;
                debug_assert_eq!(term.postings.len(), term.live as usize);
            }
        }
        self.documents -= 1;
        self.total_length -= u64::from(self.document_length[index]);
        self.document_length[index] = 0;
    }

    /// BM25 of every live document sharing a term with `query`: (slot, score), score > 0, in no
    /// particular order. Statistics (document count, average length, document frequency) are
    /// those of the whole index, whatever filter the caller applies afterwards.
    pub(crate) fn score(&self, query: &str) -> Vec<(u32, f32)> {
        let mut query_terms = terms(query);
        query_terms.sort_unstable();
        query_terms.dedup();
        if query_terms.is_empty() || self.documents == 0 {
            return Vec::new();
        }
        let n = self.documents as f32;
        let average_length = (self.total_length as f32 / n).max(1.0);

        // Term at a time, in sorted term order like `rank_bm25`, so each document's sum is
        // accumulated in the same order and comes out identical.
        let mut scores = vec![0.0f32; self.generation.len()];
        let mut touched = Vec::new();
        for query_term in &query_terms {
            let Some(&term_id) = self.term_ids.get(query_term.as_str()) else {
                continue;
            };
            let term = &self.terms[term_id as usize];
            let df = term.live as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for posting in &term.postings {
                let slot = posting.slot as usize;
                if self.generation[slot] != posting.generation {
                    continue;
                }
                let tf = posting.term_frequency as f32;
                let len = self.document_length[slot] as f32;
                let score =
                    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / average_length));
                let total = &mut scores[slot];
                if *total == 0.0 {
                    touched.push(posting.slot);
                }
                *total += score;
            }
        }
        touched
            .into_iter()
            .map(|slot| (slot, scores[slot as usize]))
            .collect()
    }

    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.term_ids.get(text) {
            return id;
        }
        let id = match self.free_terms.pop() {
            Some(id) => id,
            None => {
                self.terms.push(Term::default());
                (self.terms.len() - 1) as u32
            }
        };
        self.terms[id as usize].text = text.to_owned();
        self.term_ids.insert(text.to_owned(), id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut hits: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
        hits.sort_by_key(|&(slot, _)| slot);
        hits
    }

    #[test]
    fn removal_hides_postings_and_frees_terms() {
        let mut index = InvertedIndex::default();
        index.insert(0, "coffee tea");
        index.insert(1, "coffee");
        assert_eq!(index.term_count(), 2);
        index.remove(0);
        assert_eq!(index.term_count(), 1, "tea has no live document left");
        let hits = index.score("coffee tea");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0, 1);
        // Reusing slot 0 must not revive its old "coffee" posting (it would double the score).
        index.insert(0, "coffee");
        let hits = sorted(index.score("coffee"));
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].1, hits[1].1);
    }

    #[test]
    fn dead_postings_are_compacted() {
        let mut index = InvertedIndex::default();
        index.insert(0, "coffee anchor");
        for round in 0..100 {
            index.insert(1, "coffee");
            index.remove(1);
            assert!(
                index.posting_count() <= 2 + 2 * COMPACT_MIN_DEAD as usize,
                "round {round}"
            );
        }
        assert_eq!(index.score("coffee").len(), 1);
        assert_eq!(index.documents, 1);
        assert_eq!(index.total_length, 2);
    }

    #[test]
    fn empty_queries_and_indexes_score_nothing() {
        let mut index = InvertedIndex::default();
        assert!(index.score("coffee").is_empty());
        index.insert(0, "coffee");
        assert!(index.score("the of").is_empty());
        assert!(index.score("unknown").is_empty());
    }
}
