//! What ingest and search write in words: tags, a context line, link descriptions and the
//! `interpreted` answer. Without a language model everything comes from the text itself; with
//! one, the model writes it and the text-only version is the fallback when the model fails.

use membrain_llm::LanguageModel;
use membrain_memory::phrases::{
    CONTEXT_PHRASES, and_list, context_sentence, key_phrases, shared_subjects,
};
use membrain_memory::text::{keywords, tokenize};

/// Tags derived when the caller gives none.
const AUTO_TAGS: usize = 3;
/// Longest description or context a model may write (longer answers are cut).
const MAX_MODEL_TEXT: usize = 300;

/// Tags (only when the caller gave none) and a context line for a new memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrichment {
    pub tags: Vec<String>,
    pub context: String,
}

/// From the text: its leading key phrases as tags (names, identifiers and phrases such as "bike
/// startup" before single words; its most frequent words when it has no phrase at all), and a
/// sentence naming the category and those phrases.
pub fn enrich_plain(category: &str, content: &str, caller_tags: &[String]) -> Enrichment {
    let phrases = key_phrases(content, CONTEXT_PHRASES);
    let tags = if !caller_tags.is_empty() {
        caller_tags.to_vec()
    } else if phrases.is_empty() {
        keywords(content, AUTO_TAGS)
    } else {
        phrases.iter().take(AUTO_TAGS).cloned().collect()
    };
    Enrichment {
        tags,
        context: context_sentence(category, content, &phrases),
    }
}

/// Asks the model for tags and a context line; falls back to [`enrich_plain`] on any failure.
pub async fn enrich(
    llm: Option<&dyn LanguageModel>,
    content: &str,
    category: &str,
    caller_tags: &[String],
) -> Enrichment {
    let plain = enrich_plain(category, content, caller_tags);
    let Some(llm) = llm else {
        return plain;
    };
    let system = "You label short facts stored in an AI agent's long-term memory. Answer with \
                  one JSON object and nothing else: {\"tags\": [up to 3 short lowercase tags], \
                  \"context\": \"one short sentence that situates the fact\"}.";
    match llm.complete(system, content).await {
        Ok(answer) => match parse_enrichment(&answer) {
            Some((tags, context)) => Enrichment {
                tags: if caller_tags.is_empty() && !tags.is_empty() {
                    tags
                } else {
                    plain.tags
                },
                context: if context.is_empty() {
                    plain.context
                } else {
                    context
                },
            },
            None => {
                tracing::warn!("the language model's labels were not the JSON asked for");
                plain
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "the language model could not label a memory");
            plain
        }
    }
}

/// `{"tags": [...], "context": "..."}`, possibly wrapped in prose or a code fence.
fn parse_enrichment(answer: &str) -> Option<(Vec<String>, String)> {
    let start = answer.find('{')?;
    let end = answer.rfind('}')?;
    let value: serde_json::Value = serde_json::from_str(answer.get(start..=end)?).ok()?;
    let tags = value
        .get("tags")
        .and_then(|t| t.as_array())
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str())
                .map(|t| t.trim().to_lowercase())
                .filter(|t| !t.is_empty() && t.len() <= 64)
                .take(AUTO_TAGS)
                .collect()
        })
        .unwrap_or_default();
    let context = value
        .get("context")
        .and_then(|c| c.as_str())
        .map(|c| clip(c.trim()))
        .unwrap_or_default();
    Some((tags, context))
}

/// From the text: what both memories mention (names, identifiers, phrases: "both mention Lisbon
/// and the bike startup"), else the words both share ("both about coffee"), else how similar
/// they are.
pub fn describe_link_plain(new_content: &str, other_content: &str, similarity: f32) -> String {
    let mentioned = shared_subjects(new_content, other_content, 3);
    if !mentioned.is_empty() {
        return format!("both mention {}", and_list(&mentioned));
    }
    let other: std::collections::HashSet<String> = tokenize(other_content).into_iter().collect();
    let mut shared: Vec<String> = Vec::new();
    for term in tokenize(new_content) {
        if other.contains(&term) && !shared.contains(&term) {
            shared.push(term);
        }
    }
    match shared.as_slice() {
        // No number in it: identical descriptions share one cached vector.
        [] if similarity >= 0.7 => "close in meaning".to_owned(),
        [] => "related in meaning".to_owned(),
        [one] => format!("both about {one}"),
        [first @ .., last] => {
            let first: Vec<&str> = first.iter().take(3).map(String::as_str).collect();
            format!("both about {} and {last}", first.join(", "))
        }
    }
}

/// Asks the model how two memories relate; falls back to [`describe_link_plain`].
pub async fn describe_link(
    llm: Option<&dyn LanguageModel>,
    new_content: &str,
    other_content: &str,
    similarity: f32,
) -> String {
    let plain = describe_link_plain(new_content, other_content, similarity);
    let Some(llm) = llm else {
        return plain;
    };
    let system = "Two facts from an AI agent's memory follow. Say in one short phrase (at most \
                  12 words) how they relate, e.g. \"both about the user's coffee habit\" or \
                  \"the second explains the first\". Answer with the phrase only.";
    let user = format!("First: {new_content}\nSecond: {other_content}");
    match llm.complete(system, &user).await {
        Ok(answer) => {
            let phrase = clip(answer.trim().trim_matches('"').trim());
            if phrase.is_empty() { plain } else { phrase }
        }
        Err(e) => {
            tracing::warn!(error = %e, "the language model could not describe a link");
            plain
        }
    }
}

/// The `interpreted` answer: the model answers the query from the results' contents.
pub async fn interpret(
    llm: &dyn LanguageModel,
    query: &str,
    contents: &[&str],
) -> Result<String, String> {
    let system = "Answer the question using only the numbered memories given. If they do not \
                  answer it, say so. Be brief.";
    let mut user = format!("Question: {query}\nMemories:\n");
    for (i, content) in contents.iter().enumerate() {
        user.push_str(&format!("{}. {content}\n", i + 1));
    }
    llm.complete(system, &user)
        .await
        .map(|a| a.trim().to_owned())
        .map_err(|e| format!("the language model could not interpret the results: {e}"))
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_MODEL_TEXT) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_link_descriptions_name_shared_words() {
        assert_eq!(
            describe_link_plain(
                "User drinks coffee daily",
                "Coffee gives the user reflux",
                0.7
            ),
            "both about coffee"
        );
        assert_eq!(
            describe_link_plain("Cats sleep", "Dogs bark", 0.61),
            "related in meaning"
        );
        assert_eq!(
            describe_link_plain("morning coffee ritual", "coffee every morning", 0.8),
            "both about morning and coffee"
        );
    }

    #[test]
    fn model_labels_are_parsed_from_prose_or_fences() {
        let answer = "Sure:\n```json\n{\"tags\": [\"Coffee\", \"habits\"], \"context\": \"A daily habit.\"}\n```";
        assert_eq!(
            parse_enrichment(answer),
            Some((
                vec!["coffee".to_owned(), "habits".to_owned()],
                "A daily habit.".to_owned()
            ))
        );
        assert_eq!(parse_enrichment("no json here"), None);
    }

    #[test]
    fn caller_tags_win_over_derived_ones() {
        let content = "Coffee in the morning, coffee at noon";
        let e = enrich_plain("preferences", content, &["mine".to_owned()]);
        assert_eq!(e.tags, ["mine"]);
        let e = enrich_plain("preferences", content, &[]);
        assert_eq!(e.tags, ["coffee", "morning", "noon"]);
        assert_eq!(
            e.context,
            "A preferences memory about coffee, the morning and noon."
        );
    }

    #[test]
    fn plain_enrichment_names_what_the_memory_is_about() {
        let e = enrich_plain(
            "general",
            "I moved from Berlin to Lisbon in March 2024 for a job at a bike startup",
            &[],
        );
        assert_eq!(e.tags, ["berlin", "lisbon", "bike startup"]);
        assert_eq!(
            e.context,
            "A general memory about Berlin, Lisbon and a bike startup (March 2024)."
        );
        // No phrase at all: the most frequent words still tag it.
        let e = enrich_plain("general", "I went there yesterday and went again", &[]);
        assert_eq!(e.tags, ["went", "yesterday", "again"]);
        assert_eq!(e.context, "A general memory.");
    }

    #[test]
    fn plain_link_descriptions_name_shared_names_and_phrases_first() {
        let moved = "I moved from Berlin to Lisbon in March 2024 for a job at a bike startup";
        assert_eq!(
            describe_link_plain(
                moved,
                "The bike startup where I work builds cargo e-bikes",
                0.3
            ),
            "both mention the bike startup"
        );
        assert_eq!(
            describe_link_plain(moved, "Lisbon has a bike startup on every corner", 0.5),
            "both mention Lisbon and the bike startup"
        );
        assert_eq!(
            describe_link_plain(
                "Deploy notes: TenantIndex::lexical needs a filter now",
                "Why TenantIndex::lexical skips filtered documents",
                0.5
            ),
            "both mention TenantIndex::lexical"
        );
    }
}
