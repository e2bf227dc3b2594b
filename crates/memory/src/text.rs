//! Text handling shared by ingest, dedup and lexical search: normalisation, the exact-duplicate
//! hash, tokenisation and keywords.

use sha2::{Digest, Sha256};

/// Normalised content: Unicode-lower-cased, with every run of white space folded to one space
/// and the ends trimmed. Two memories with the same normal form are exact duplicates.
pub fn normalize(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    for word in content.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Hex SHA-256 of the normalised content: the key that catches exact duplicates before any
/// similarity check.
pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(normalize(content).as_bytes()))
}

/// Lower-cased word tokens: runs of letters or digits, at least two characters, stop words
/// dropped. Used for ranking and keywords alike so they agree.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .filter(|w| !is_stop_word(w))
        .collect()
}

/// The terms lexical ranking compares: [`tokenize`]d words reduced to their stems (Snowball
/// English), so "painted", "paints" and "painting" all match "paint". Keywords and tags keep
/// the readable words.
pub fn terms(text: &str) -> Vec<String> {
    static STEMMER: std::sync::LazyLock<rust_stemmers::Stemmer> = std::sync::LazyLock::new(|| {
        rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English)
    });
    tokenize(text)
        .into_iter()
        .map(|word| STEMMER.stem(&word).into_owned())
        .collect()
}

/// Longest token taken as a keyword: a longer run of letters is not a word a person would
/// skim for (and a 60 KB one would be copied into the keywords and the context line).
pub const MAX_KEYWORD_BYTES: usize = 40;

/// Up to `max` keywords: the most frequent tokens, ties broken by first appearance. Linear in
/// the text (a hash map, not a search per token), since it runs on every ingest and update.
pub fn keywords(text: &str, max: usize) -> Vec<String> {
    let mut counts: std::collections::HashMap<String, (usize, usize)> =
        std::collections::HashMap::new();
    for (position, token) in tokenize(text).into_iter().enumerate() {
        if token.len() > MAX_KEYWORD_BYTES || token.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        counts.entry(token).or_insert((0, position)).0 += 1;
    }
    let mut counts: Vec<(String, usize, usize)> = counts
        .into_iter()
        .map(|(token, (count, first))| (token, count, first))
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    counts.into_iter().take(max).map(|(t, _, _)| t).collect()
}

/// A one-line context for a memory from its category and leading keywords alone, for where
/// only the keywords are at hand; [`crate::phrases::plain_context`] reads the content and
/// writes a better one.
pub fn derive_context(category: &str, keywords: &[String]) -> String {
    let shown: Vec<String> = keywords.iter().take(4).cloned().collect();
    crate::phrases::context_sentence(category, "", &shown)
}

/// Whether a lower-cased word is on the short English stop-word list.
pub(crate) fn is_stop_word(word: &str) -> bool {
    // A short English list: enough to keep "the" and "is" out of keywords and rankings. "user"
    // is here because agents write nearly every memory about "the user": as a term it would
    // match everything, and as a tag or link description it says nothing.
    const STOP_WORDS: &[&str] = &[
        "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
        "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing",
        "for", "from", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his",
        "how", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most", "my", "no",
        "nor", "not", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out",
        "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the",
        "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too",
        "under", "until", "up", "user", "very", "was", "we", "were", "what", "when", "where",
        "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
    ];
    STOP_WORDS.binary_search(&word).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form_ignores_case_and_spacing() {
        assert_eq!(normalize("  The\tCAT\n sat  "), "the cat sat");
        assert_eq!(content_hash("The cat sat"), content_hash("the  cat\nsat"));
        assert_ne!(content_hash("the cat sat"), content_hash("the cat sat."));
    }

    #[test]
    fn terms_are_stems() {
        assert_eq!(terms("She painted; he paints"), vec!["paint", "paint"]);
        assert_eq!(terms("running races"), vec!["run", "race"]);
    }

    #[test]
    fn tokens_drop_stop_words_and_punctuation() {
        assert_eq!(
            tokenize("The user's favourite drink is coffee!"),
            vec!["favourite", "drink", "coffee"]
        );
    }

    #[test]
    fn keywords_prefer_frequent_then_early_words() {
        let k = keywords("coffee in the morning, coffee at noon, tea at night", 3);
        assert_eq!(k, vec!["coffee", "morning", "noon"]);
        assert_eq!(
            derive_context("preferences", &k),
            "A preferences memory about coffee, morning and noon."
        );
    }

    #[test]
    fn runs_of_letters_too_long_to_be_words_are_not_keywords() {
        let text = format!("gardening {} gardening roses", "x".repeat(5_000));
        assert_eq!(keywords(&text, 3), vec!["gardening", "roses"]);
    }

    #[test]
    fn stop_word_list_is_sorted_for_binary_search() {
        assert!(is_stop_word("the") && is_stop_word("yours") && is_stop_word("a"));
        assert!(!is_stop_word("coffee"));
    }
}
