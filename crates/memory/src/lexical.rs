//! Lexical ranking with Okapi BM25 over a candidate set.
//!
//! Issue-sized and honest: the candidates come from storage already filtered by tenant and tags;
//! this module only scores them. Scores are normalised to 0..=1 (divided by the best score) so
//! they can stand in the API's `semantic_score` field until dense embeddings arrive.

use std::collections::HashMap;

use crate::text::terms;

/// One ranked candidate: its index in the input slice and its normalised score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    pub index: usize,
    pub score: f32,
}

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// Ranks `documents` against `query` and returns at most `k` with a positive score, best first.
/// Ties keep the input order, so a caller that passes newest-first gets newest-first ties.
pub fn rank_bm25(query: &str, documents: &[&str], k: usize) -> Vec<Ranked> {
    let mut query_terms = terms(query);
    query_terms.sort();
    query_terms.dedup();
    if query_terms.is_empty() || documents.is_empty() || k == 0 {
        return Vec::new();
    }

    let tokenized: Vec<Vec<String>> = documents.iter().map(|d| terms(d)).collect();
    let total_len: usize = tokenized.iter().map(Vec::len).sum();
    let avg_len = (total_len as f32 / documents.len() as f32).max(1.0);

    let mut document_frequency: HashMap<&str, usize> = HashMap::new();
    for tokens in &tokenized {
        for term in &query_terms {
            if tokens.iter().any(|t| t == term) {
                *document_frequency.entry(term.as_str()).or_default() += 1;
            }
        }
    }

    let n = documents.len() as f32;
    let mut ranked: Vec<Ranked> = tokenized
        .iter()
        .enumerate()
        .filter_map(|(index, tokens)| {
            let len = tokens.len() as f32;
            let score: f32 = query_terms
                .iter()
                .map(|term| {
                    let tf = tokens.iter().filter(|t| *t == term).count() as f32;
                    if tf == 0.0 {
                        return 0.0;
                    }
                    let df = document_frequency.get(term.as_str()).copied().unwrap_or(0) as f32;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg_len))
                })
                .sum();
            (score > 0.0).then_some(Ranked { index, score })
        })
        .collect();

    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    ranked.truncate(k);
    if let Some(best) = ranked.first().map(|r| r.score) {
        for r in &mut ranked {
            r.score /= best;
        }
    }
    ranked
}

/// How well `text` matches `query`, 0..=1: the share of the query's terms that appear in it.
/// Used to follow edges whose descriptions speak of the query.
pub fn term_overlap(query: &str, text: &str) -> f32 {
    let mut query_terms = terms(query);
    query_terms.sort();
    query_terms.dedup();
    if query_terms.is_empty() {
        return 0.0;
    }
    let text_terms = terms(text);
    let hits = query_terms
        .iter()
        .filter(|q| text_terms.contains(q))
        .count();
    hits as f32 / query_terms.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevant_documents_rank_first() {
        let docs = [
            "The user drinks green tea every morning",
            "The user's favourite coffee is a flat white",
            "Coffee gives the user acid reflux; coffee should be cold brew",
            "The cat is called Tom",
        ];
        let ranked = rank_bm25("coffee", &docs, 10);
        let order: Vec<usize> = ranked.iter().map(|r| r.index).collect();
        assert_eq!(order, vec![2, 1]);
        assert_eq!(ranked[0].score, 1.0);
        assert!(ranked[1].score > 0.0 && ranked[1].score < 1.0);
    }

    #[test]
    fn k_bounds_and_empty_queries() {
        let docs = ["tea", "tea tea", "more tea"];
        assert_eq!(rank_bm25("tea", &docs, 2).len(), 2);
        assert!(rank_bm25("the of", &docs, 10).is_empty());
        assert!(rank_bm25("tea", &[], 10).is_empty());
    }

    #[test]
    fn overlap_counts_shared_terms() {
        assert_eq!(term_overlap("coffee health", "coffee causes reflux"), 0.5);
        assert_eq!(term_overlap("coffee", "tea"), 0.0);
        assert_eq!(term_overlap("", "tea"), 0.0);
    }
}
