//! The guidance Membrain gives agents: the `get_agent_instructions` tool and two resources.

/// Returned by `get_agent_instructions`: how to use the memory well.
pub const AGENT_INSTRUCTIONS: &str = r#"You have a long-term memory: a graph of short facts about the user and their work, kept by Membrain.

## How to use it

1. Search before you answer anything personal or project-specific: `search_memories` with a
   specific natural-language question ("Which database did we choose for the billing service?"),
   not a single keyword. Look at `related_memories` on each result: they are linked facts that
   often hold the real answer.
2. Store facts, not conversation: `add_memory` with one self-contained statement
   ("User prefers dark mode in every editor"), not "you said you like dark mode". Duplicates,
   exact or reworded, are merged automatically, so storing a fact twice is harmless, and related
   memories are linked for you with a description of how they relate.
3. Scope with tags: give memories tags such as a project or domain (`project-atlas`, `health`).
   Restrict a search with `keyword_filter` (a regex, or a list of regexes that must all match a
   tag) or `scope_regex` (one regex) — never both at once.
4. Follow the graph: `traverse_graph` walks links whose descriptions mean what a question asks;
   `get_neighborhood` lists everything within a few links; `find_path` explains how two memories
   connect. `link_memories` records a relationship you noticed; `unlink_memories` removes a wrong one.
5. Keep it true: when a fact changes, `update_memory` the old one (its history is kept) or add the
   new fact; `delete_memories` removes what is wrong or what the user asks you to forget.

## Tools

| Tool | Use it to |
|------|-----------|
| search_memories(query, k=5, keyword_filter?, scope_regex?, response_format="raw") | find facts by question |
| get_memories(memory_ids) | read full memories by id |
| add_memory(content, tags?, category?, ingestion_scope?, observed_at?) | store a new fact (observed_at: when, if not now) |
| update_memory(memory_id, content?, tags?, observed_at?) | correct a fact (or when it was observed), keeping its history |
| delete_memories(memory_id? / tags? / category?) | forget facts (a filter is required) |
| link_memories / unlink_memories(memory_id_1, memory_id_2) | add or remove a relationship |
| traverse_graph, get_neighborhood, find_path | explore the graph |
| get_stats() | see how much is stored, the most used tags, and usage against your quotas |

Synthesize across memories; do not just read them back."#;

/// The agent guide as a resource.
pub const AGENT_INSTRUCTIONS_URI: &str = "membrain://docs/agent-instructions";

/// A resource: how to work with memory during a conversation.
pub const WORKFLOW_GUIDE_URI: &str = "membrain://docs/workflow-guide";
pub const WORKFLOW_GUIDE: &str = r#"# Memory workflow

* Search first, with a full question; check `related_memories`.
* Answer by connecting facts: "this fits the navy palette you chose last month", not "a memory says you like navy".
* Store new facts as they appear, one statement each, with a domain tag and a type tag.
* When something changes, update the old memory or add the new fact; the history is kept.
* Use `traverse_graph` when the answer is one or two links away from what search found."#;

/// A resource: how to write memories that can be found again.
pub const STORAGE_GUIDELINES_URI: &str = "membrain://docs/storage-guidelines";
pub const STORAGE_GUIDELINES: &str = r#"# Storage guidelines

## Write facts
* Good: "User is allergic to peanuts." Bad: "The user told me in chat that they might have an allergy."
* One fact per memory; include the subject so it stands alone.
* Add time when it matters: "As of March 2026 the team deploys on ECS."

## Tags
* Domain: health, work, finance, tech, food, travel, or a project name such as project-atlas.
* Type: preference, constraint, goal, fact, event.
* Tags are lower-cased; a comma is not allowed inside a tag. With no tags, Membrain derives a few from the content.

## Duplicates and changes
* Exact duplicates (ignoring case and spacing) are merged, and new tags are added to the existing memory.
* A near-duplicate (the same fact in other words) replaces the old wording, which stays in
  `evolution_history` as a `near_duplicate_merge` entry; the opposite statement is not a duplicate.
* Prefer `update_memory` for a corrected fact; the old text stays in `evolution_history`."#;
