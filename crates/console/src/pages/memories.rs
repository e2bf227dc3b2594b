//! The memory pages: the list (paged, filtered by tag), search with scores and why each result
//! matched, and one memory with its context, history and links.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use membrain_contract::memories::{BatchRequest, ListQuery, MemoriesAnswer, MemoryPage};
use membrain_contract::search::{
    MemoryNode, RelationshipEdge, SearchAnswer, SearchRequest, SearchResult,
};
use membrain_memory::{EvolutionEvent, Memory};
use serde::{Deserialize, Serialize};

use super::{graph_href, memory_href, short, tenant_key, when, with_query};
use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::layout::page;
use crate::security::{ConsoleQuery, SignedIn, html_response};

/// Memories per page of the list.
const PAGE_SIZE: i64 = 20;

/// Results a search shows.
const SEARCH_RESULTS: i64 = 10;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ListParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

/// `GET /console/memories?tag=&cursor=`.
pub async fn list(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    ConsoleQuery(params): ConsoleQuery<ListParams>,
) -> Result<Response, ConsoleError> {
    let key = tenant_key(&signed_in)?;
    let tag = params
        .tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let query = ListQuery {
        limit: Some(PAGE_SIZE),
        cursor: params.cursor.clone().filter(|c| !c.is_empty()),
        tag: tag.clone(),
    };
    let answer: MemoryPage = state.api.get(key, &["memories"], Some(&query)).await?;
    let next = answer.next_cursor.as_ref().map(|cursor| {
        with_query(
            "/console/memories",
            &ListParams {
                tag: tag.clone(),
                cursor: Some(cursor.clone()),
            },
        )
    });
    let body = html! {
        form method="get" action="/console/memories" class="bar" {
            label for="tag" { "Tag" }
            input type="text" id="tag" name="tag" value=(tag.clone().unwrap_or_default());
            button type="submit" { "Filter" }
            @if tag.is_some() {
                a href="/console/memories" { "Show all" }
            }
        }
        @if answer.memories.is_empty() {
            p class="empty" {
                @if tag.is_some() { "No memory carries this tag." } @else { "No memories yet." }
            }
        } @else {
            table class="memories" {
                thead { tr { th { "Memory" } th { "Tags" } th { "Created" } } }
                tbody {
                    @for memory in &answer.memories {
                        tr {
                            td { a class="memory-link" href=(memory_href(&memory.id)) { (short(&memory.content, 160)) } }
                            td { (tag_links(&memory.tags)) }
                            td class="nowrap" { (when(memory.created_at)) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p { a href=(next) id="next-page" { "Older memories →" } }
        }
    };
    let title = match &tag {
        Some(tag) => format!("Memories tagged “{tag}”"),
        None => "Memories".to_owned(),
    };
    Ok(html_response(page(
        &title,
        Some((&signed_in.session).into()),
        body,
    )))
}

fn tag_links(tags: &[String]) -> Markup {
    html! {
        @for tag in tags {
            a class="tag" href=(with_query("/console/memories", &ListParams { tag: Some(tag.clone()), cursor: None })) { (tag) }
            " "
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    ranking: Option<String>,
}

/// `GET /console/search?q=&ranking=`: the search form, and the results when there is a
/// question.
pub async fn search(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    ConsoleQuery(params): ConsoleQuery<SearchParams>,
) -> Result<Response, ConsoleError> {
    let key = tenant_key(&signed_in)?;
    let question = params.q.trim().to_owned();
    let ranking = params
        .ranking
        .filter(|r| matches!(r.as_str(), "hybrid" | "lexical" | "dense"));
    let answer: Option<SearchAnswer> = if question.is_empty() {
        None
    } else {
        let mut request = SearchRequest::new(question.clone(), SEARCH_RESULTS);
        request.ranking = ranking.clone();
        Some(
            state
                .api
                .post(key, &["memories", "search"], &request)
                .await?,
        )
    };
    let chosen = ranking.as_deref().unwrap_or("hybrid");
    let body = html! {
        form method="get" action="/console/search" class="bar" {
            label for="q" { "Question" }
            input type="search" id="q" name="q" value=(question) required;
            select name="ranking" aria-label="Ranking" {
                @for (value, label) in [("hybrid", "Hybrid"), ("lexical", "Words only"), ("dense", "Meaning only")] {
                    option value=(value) selected[chosen == value] { (label) }
                }
            }
            button type="submit" id="search" { "Search" }
        }
        @if let Some(answer) = &answer {
            @for notice in &answer.notices {
                p class="notice" { (notice) }
            }
            @if answer.results.is_empty() {
                p class="empty" { "Nothing matched." }
            }
            ol class="results" {
                @for result in &answer.results {
                    li class="result" {
                        @match result {
                            SearchResult::MemoryNode(node) => (memory_result(node, &question)),
                            SearchResult::RelationshipEdge(edge) => (edge_result(edge)),
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(page(
        "Search",
        Some((&signed_in.session).into()),
        body,
    )))
}

fn memory_result(node: &MemoryNode, question: &str) -> Markup {
    let shared = shared_words(question, &node.memory);
    html! {
        div class="scores" {
            span class="score" title="What the order follows" { "score " (format!("{:.3}", node.score)) }
            span class="score" title="Cosine similarity of question and memory" { "meaning " (format!("{:.3}", node.semantic_score)) }
        }
        a class="memory-link" href=(memory_href(&node.memory.id)) { (short(&node.memory.content, 240)) }
        div { (tag_links(&node.memory.tags)) }
        div class="why" {
            strong { "Why it matched: " }
            ul {
                @if shared.is_empty() {
                    li { "no word in common: found by meaning (the embedding's similarity)" }
                } @else {
                    li { "words in common: " @for (i, word) in shared.iter().enumerate() { @if i > 0 { ", " } code { (word) } } }
                }
                @if node.semantic_score >= 0.3 {
                    li { "close in meaning (similarity " (format!("{:.2}", node.semantic_score)) ")" }
                }
                @for related in &node.related_memories {
                    li {
                        "linked to " a href=(memory_href(&related.id)) { (short(&related.content, 80)) }
                        ": " em { (related.relationship) }
                    }
                }
            }
        }
    }
}

fn edge_result(edge: &RelationshipEdge) -> Markup {
    html! {
        div class="scores" { span class="score" { "score " (format!("{:.3}", edge.score)) } }
        p { "A link whose description answers the question: " em { (edge.description) } }
        div class="why" {
            strong { "Why it matched: " }
            "the link's description is closer to the question than either memory it joins"
        }
        ul {
            li { a href=(memory_href(&edge.source.id)) { (short(&edge.source.content, 120)) } }
            li { a href=(memory_href(&edge.target.id)) { (short(&edge.target.content, 120)) } }
        }
    }
}

/// The question's words (three letters or more) that the memory's content, tags or keywords
/// hold: what lexical ranking found.
fn shared_words(question: &str, memory: &Memory) -> Vec<String> {
    let words = |text: &str| -> BTreeSet<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .map(str::to_lowercase)
            .collect()
    };
    let mut held = words(&memory.content);
    for extra in memory.tags.iter().chain(&memory.keywords) {
        held.extend(words(extra));
    }
    words(question)
        .into_iter()
        .filter(|w| held.contains(w))
        .collect()
}

/// `GET /console/memories/{memory_id}`: content, tags, context, history and links.
pub async fn one(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(memory_id): Path<String>,
) -> Result<Response, ConsoleError> {
    let key = tenant_key(&signed_in)?;
    let memory: Memory = state
        .api
        .get(key, &["memories", &memory_id], None::<&()>)
        .await?;
    // The linked memories' texts, for their descriptions to read well; their ids suffice when
    // they cannot be had.
    let linked: Vec<Memory> = if memory.links.is_empty() {
        Vec::new()
    } else {
        let request = BatchRequest {
            memory_ids: memory
                .links
                .iter()
                .map(|l| l.memory_id.to_string())
                .collect(),
        };
        state
            .api
            .post::<MemoriesAnswer>(key, &["memories", "batch"], &request)
            .await
            .map(|answer| answer.memories)
            .unwrap_or_default()
    };
    let body = html! {
        section class="card" {
            p class="content" id="memory-content" { (memory.content) }
            dl {
                dt { "Tags" } dd { (tag_links(&memory.tags)) }
                dt { "Category" } dd { (memory.category) }
                dt { "Context" } dd { (memory.context) }
                dt { "Keywords" } dd { (memory.keywords.join(", ")) }
                dt { "Created" } dd { (when(memory.created_at)) }
                dt { "Updated" } dd { (when(memory.updated_at)) }
                dt { "Id" } dd { code { (memory.id.to_string()) } }
            }
            p { a href=(graph_href(&memory.id)) id="open-graph" { "See its neighbourhood in the graph →" } }
        }
        h2 { "Links" }
        @if memory.links.is_empty() {
            p class="empty" { "No links." }
        } @else {
            ul class="links" {
                @for link in &memory.links {
                    li {
                        a href=(memory_href(&link.memory_id)) {
                            @match linked.iter().find(|m| m.id == link.memory_id) {
                                Some(other) => (short(&other.content, 120)),
                                None => (link.memory_id.to_string()),
                            }
                        }
                        " — " em { (link.description) }
                        span class="muted" { " (linked " (when(link.created_at)) ")" }
                    }
                }
            }
        }
        h2 { "History" }
        @if memory.evolution_history.is_empty() {
            p class="empty" { "Unchanged since it was stored." }
        } @else {
            ol class="history" {
                @for event in &memory.evolution_history {
                    li { (history_entry(event)) }
                }
            }
            @if memory.evolution_history_dropped > 0 {
                p class="muted" { (memory.evolution_history_dropped) " older entries were not kept." }
            }
        }
    };
    Ok(html_response(page(
        "Memory",
        Some((&signed_in.session).into()),
        body,
    )))
}

fn history_entry(event: &EvolutionEvent) -> Markup {
    match event {
        EvolutionEvent::ContentUpdate {
            old_content,
            timestamp,
        } => html! {
            (when(*timestamp)) ": content updated; it read " q { (old_content) }
        },
        EvolutionEvent::Merge {
            merged_tags,
            timestamp,
        } => html! {
            (when(*timestamp)) ": the same text was stored again"
            @if !merged_tags.is_empty() { "; tags added: " (merged_tags.join(", ")) }
        },
        EvolutionEvent::NearDuplicateMerge {
            old_content,
            similarity,
            merged_tags,
            timestamp,
        } => html! {
            (when(*timestamp)) ": a text with the same meaning (similarity "
            (format!("{similarity:.2}")) ") replaced " q { (old_content) }
            @if !merged_tags.is_empty() { "; tags added: " (merged_tags.join(", ")) }
        },
    }
}
