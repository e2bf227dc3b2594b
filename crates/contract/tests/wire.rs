//! The wire JSON of every REST answer and request, held in `tests/snapshots/*.json`: a change to
//! a field's name, type or presence fails here, where it is one diff to review, instead of in a
//! client. The shapes are the public `mem-brain-mcp` 1.1.5 contract plus Membrain's additions;
//! `tests/compat` (Python, the real client) checks the same against a running API.
//!
//! After an intended change, regenerate the snapshots with
//! `MEMBRAIN_UPDATE_SNAPSHOTS=1 cargo test -p membrain-contract --test wire` and review the diff.

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use membrain_contract::admin::*;
use membrain_contract::graph::*;
use membrain_contract::health::*;
use membrain_contract::memories::*;
use membrain_contract::search::*;
use membrain_contract::stats::*;
use membrain_contract::ts::{DropAnswer, QueryBody};
use membrain_contract::{ErrorBody, ErrorDetail};
use membrain_memory::{EvolutionEvent, JobId, Memory, MemoryId, MemoryLink, TenantId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 9, 30, second)
        .single()
        .expect("a valid time")
}

fn memory_id(n: u8) -> MemoryId {
    MemoryId::parse_field(&format!("0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a{n:02x}"), "id")
        .expect("a valid id")
}

fn job_id() -> JobId {
    JobId::parse_field("0190a5b2-7c3e-7d4f-8a1b-000000000001", "job_id").expect("a valid id")
}

fn memory() -> Memory {
    Memory {
        id: memory_id(1),
        content: "User drinks green tea every morning".into(),
        tags: vec!["drinks".into(), "habits".into()],
        category: "preferences".into(),
        context: "preferences: green, tea, morning".into(),
        keywords: vec!["green".into(), "tea".into(), "morning".into()],
        links: vec![MemoryLink {
            memory_id: memory_id(2),
            description: "both about the user's mornings".into(),
            created_at: at(1),
        }],
        evolution_history: vec![
            EvolutionEvent::ContentUpdate {
                old_content: "User drinks tea".into(),
                timestamp: at(2),
            },
            EvolutionEvent::Merge {
                merged_tags: vec!["habits".into()],
                timestamp: at(3),
            },
            EvolutionEvent::NearDuplicateMerge {
                old_content: "The user has green tea each morning".into(),
                similarity: 0.93,
                merged_tags: vec![],
                timestamp: at(4),
            },
        ],
        evolution_history_dropped: 0,
        observed_at: at(0),
        created_at: at(0),
        updated_at: at(4),
    }
}

fn edge_end(n: u8) -> EdgeEnd {
    EdgeEnd {
        id: memory_id(n),
        content: format!("memory {n}"),
        context: "general: memory".into(),
        tags: vec!["t".into()],
        keywords: vec!["memory".into()],
    }
}

/// Each snapshot's name and the JSON it holds.
fn cases() -> Vec<(&'static str, Value)> {
    fn wire<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) -> Value {
        let json = serde_json::to_value(&value).expect("serialises");
        // What the API writes, the bridge reads back as the same value.
        let back: T = serde_json::from_value(json.clone()).expect("deserialises");
        assert_eq!(back, value, "round trip of {json}");
        json
    }
    let edge = EdgeView {
        source_id: memory_id(1),
        target_id: memory_id(2),
        description: "both about the user's mornings".into(),
        similarity: None,
    };
    vec![
        (
            "error",
            wire(ErrorBody {
                error: ErrorDetail {
                    code: "invalid_request".into(),
                    message: "k: must be between 1 and 100, got 0".into(),
                },
            }),
        ),
        (
            "health",
            wire(Health {
                status: "healthy".into(),
                service: "membrain-api".into(),
                version: "0.1.0".into(),
            }),
        ),
        (
            "ready",
            wire(Ready {
                status: "ready".into(),
                database: "sqlite".into(),
            }),
        ),
        (
            "whoami",
            wire(WhoAmI {
                tenant: TenantId::parse("acme").expect("a valid tenant"),
            }),
        ),
        (
            "add_memory_request",
            wire(AddMemoryRequest {
                content: "User drinks green tea every morning".into(),
                tags: Some(TagsInput::List(vec!["drinks".into()])),
                category: Some("preferences".into()),
                ingestion_scope: None,
                observed_at: Some("2024-03-08".into()),
            }),
        ),
        (
            "add_memory_accepted",
            wire(Accepted {
                status: "accepted".into(),
                job_id: job_id(),
                job_status: JobStatus::Queued,
                status_url: format!("/api/v1/memories/jobs/{}", job_id()),
                created_at: at(0),
            }),
        ),
        (
            "ingest_job_completed",
            wire(IngestJobAnswer {
                job_id: job_id(),
                status: JobStatus::Completed,
                attempts: 1,
                created_at: at(0),
                started_at: Some(at(1)),
                completed_at: Some(at(2)),
                result: Some(IngestOutcome {
                    status: "success".into(),
                    memory_id: memory_id(1),
                    action: IngestAction::Created,
                    memory: Some(memory()),
                }),
                error: None,
            }),
        ),
        (
            "ingest_job_failed",
            wire(IngestJobAnswer {
                job_id: job_id(),
                status: JobStatus::Failed,
                attempts: 3,
                created_at: at(0),
                started_at: Some(at(1)),
                completed_at: None,
                result: None,
                error: Some(JobFailure {
                    code: "quota_exceeded".into(),
                    message: "the tenant holds 10000 memories, its quota".into(),
                }),
            }),
        ),
        (
            "search_request",
            wire(SearchRequest {
                keyword_filter: Some(TagsInput::List(vec!["^drink".into()])),
                response_format: Some("raw".into()),
                ..SearchRequest::new("What does the user drink?", 5)
            }),
        ),
        (
            "search_answer",
            wire(SearchAnswer {
                count: 2,
                results: vec![
                    SearchResult::MemoryNode(MemoryNode {
                        memory: memory(),
                        semantic_score: 0.75,
                        score: 0.5,
                        related_memories: vec![RelatedMemory {
                            id: memory_id(2),
                            content: "User wakes at six".into(),
                            tags: vec!["habits".into()],
                            relationship: "both about the user's mornings".into(),
                        }],
                    }),
                    SearchResult::RelationshipEdge(RelationshipEdge {
                        score: 0.625,
                        description: "both about the user's mornings".into(),
                        source: edge_end(1),
                        target: edge_end(2),
                    }),
                ],
                truncated: false,
                notices: vec![],
                interpreted: None,
                interpreted_error: None,
            }),
        ),
        (
            "search_answer_interpreted_error",
            wire(SearchAnswer {
                count: 0,
                results: vec![],
                truncated: false,
                notices: vec!["the model is busy; these results are lexical only".into()],
                interpreted: Some(None),
                interpreted_error: Some("no language model is configured".into()),
            }),
        ),
        (
            "batch_request",
            wire(BatchRequest {
                memory_ids: vec![memory_id(1).to_string()],
            }),
        ),
        (
            "memories_answer",
            wire(MemoriesAnswer {
                memories: vec![memory()],
                count: 1,
                truncated: false,
            }),
        ),
        ("memory", wire(memory())),
        (
            "update_request",
            wire(UpdateRequest {
                content: Some("User drinks black tea".into()),
                tags: Some(TagsInput::Text("drinks, habits".into())),
                observed_at: None,
            }),
        ),
        (
            "delete_query",
            wire(DeleteQuery {
                tags: Some("drinks,habits".into()),
                ..DeleteQuery::default()
            }),
        ),
        (
            "delete_answer",
            wire(DeleteAnswer {
                status: "deleted".into(),
                deleted_count: 1,
                memory_ids: vec![memory_id(1)],
            }),
        ),
        (
            "stats_answer",
            wire(StatsAnswer {
                total_memories: 3,
                total_links: 2,
                avg_links_per_memory: 0.67,
                top_tags: vec![TagCount {
                    tag: "drinks".into(),
                    count: 2,
                }],
                categories: vec![CategoryCount {
                    category: "preferences".into(),
                    count: 3,
                }],
                usage: Usage {
                    memories: 3,
                    stored_bytes: 120,
                    pending_jobs: 0,
                    max_memories: 100_000,
                    max_stored_bytes: 1 << 30,
                    max_pending_jobs: 1_000,
                },
            }),
        ),
        (
            "link_request",
            wire(LinkRequest {
                memory_id_1: Some(memory_id(1).to_string()),
                memory_id_2: Some(memory_id(2).to_string()),
                description: Some("both about the user's mornings".into()),
            }),
        ),
        (
            "link_answer",
            wire(LinkAnswer {
                status: "linked".into(),
                memory_id_1: memory_id(1),
                memory_id_2: memory_id(2),
                description: Some("both about the user's mornings".into()),
            }),
        ),
        (
            "unlink_answer",
            wire(LinkAnswer {
                status: "unlinked".into(),
                memory_id_1: memory_id(1),
                memory_id_2: memory_id(2),
                description: None,
            }),
        ),
        (
            "path_answer",
            wire(PathAnswer {
                found: true,
                hops: Some(1),
                path: vec![memory()],
                edges: vec![edge.clone()],
                truncated: false,
            }),
        ),
        (
            "path_answer_not_found",
            wire(PathAnswer {
                found: false,
                hops: None,
                path: vec![],
                edges: vec![],
                truncated: false,
            }),
        ),
        (
            "neighborhood_answer",
            wire(NeighborhoodAnswer {
                center_id: memory_id(1),
                hops: 2,
                count: 1,
                memories: vec![VisitedMemory {
                    memory: memory(),
                    hops: 0,
                }],
                edges: vec![edge.clone()],
                truncated: false,
            }),
        ),
        (
            "traverse_answer",
            wire(TraverseAnswer {
                start_memory_id: memory_id(1),
                query: "mornings".into(),
                max_hops: 2,
                edge_similarity_threshold: 0.5,
                memory_count: 1,
                edge_count: 1,
                memories: vec![VisitedMemory {
                    memory: memory(),
                    hops: 0,
                }],
                traversed_edges: vec![EdgeView {
                    similarity: Some(0.75),
                    ..edge
                }],
                truncated: false,
            }),
        ),
        (
            "ts_query_body",
            wire(QueryBody {
                sql: "SELECT 1".into(),
            }),
        ),
        (
            "ts_drop_answer",
            wire(DropAnswer {
                status: "dropped".into(),
                database: "transit".into(),
                table: "bus_position".into(),
            }),
        ),
        (
            "list_query",
            wire(ListQuery {
                limit: Some(20),
                cursor: Some("1796290200000000_0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a01".into()),
                tag: Some("drinks".into()),
            }),
        ),
        (
            "memory_page",
            wire(MemoryPage {
                memories: vec![memory()],
                count: 1,
                next_cursor: Some("1796290200000000_0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a01".into()),
            }),
        ),
        (
            "admin_keys_answer",
            wire(KeysAnswer {
                keys: vec![key_view()],
                count: 1,
            }),
        ),
        (
            "admin_create_key_request",
            wire(CreateKeyRequest {
                tenant: Some("acme".into()),
                label: Some("laptop".into()),
            }),
        ),
        (
            "admin_created_key",
            wire(CreatedKey {
                key: "mb_live_0123456789abcdef".into(),
                record: key_view(),
            }),
        ),
    ]
}

fn key_view() -> KeyView {
    KeyView {
        id: "key_0190a5b2".into(),
        tenant: TenantId::parse("acme").expect("a valid tenant"),
        label: "laptop".into(),
        created_at: at(0),
        revoked_at: Some(at(5)),
    }
}

fn snapshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.json"))
}

#[test]
fn every_shape_matches_its_snapshot() {
    let update = std::env::var_os("MEMBRAIN_UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for (name, json) in cases() {
        let text = serde_json::to_string_pretty(&json).expect("serialises") + "\n";
        let path = snapshot(name);
        let held = std::fs::read_to_string(&path).unwrap_or_default();
        if held != text {
            if update {
                std::fs::write(&path, &text).expect("write the snapshot");
            } else {
                stale.push(format!("{name}:\n--- held\n{held}--- now\n{text}"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "the wire JSON changed (regenerate with MEMBRAIN_UPDATE_SNAPSHOTS=1 after review):\n{}",
        stale.join("\n")
    );
}

/// The fields the public `mem-brain-mcp` 1.1.5 client reads, by answer: the snapshots may gain
/// fields, never lose these.
#[test]
fn the_public_clients_fields_are_present() {
    let cases: std::collections::HashMap<_, _> = cases().into_iter().collect();
    let has = |name: &str, pointer: &str| {
        assert!(
            cases[name].pointer(pointer).is_some(),
            "{name} lacks {pointer}: {}",
            cases[name]
        );
    };
    for pointer in ["/job_id", "/status"] {
        has("add_memory_accepted", pointer);
    }
    for pointer in [
        "/status",
        "/result/memory_id",
        "/result/action",
        "/result/memory/id",
    ] {
        has("ingest_job_completed", pointer);
    }
    for pointer in ["/error/code", "/error/message"] {
        has("ingest_job_failed", pointer);
        has("error", pointer);
    }
    for pointer in [
        "/count",
        "/results/0/type",
        "/results/0/id",
        "/results/0/content",
        "/results/0/tags",
        "/results/0/semantic_score",
        "/results/0/related_memories/0/relationship",
        "/results/1/type",
        "/results/1/description",
        "/results/1/source/content",
        "/results/1/target/content",
    ] {
        has("search_answer", pointer);
    }
    for pointer in [
        "/total_memories",
        "/total_links",
        "/avg_links_per_memory",
        "/top_tags/0/tag",
        "/top_tags/0/count",
    ] {
        has("stats_answer", pointer);
    }
    for pointer in ["/memories/0/id", "/memories/0/evolution_history/0/type"] {
        has("memories_answer", pointer);
    }
    for pointer in ["/deleted_count", "/memory_ids/0"] {
        has("delete_answer", pointer);
    }
    for pointer in ["/found", "/path/0/id", "/edges/0/description"] {
        has("path_answer", pointer);
    }
    assert_eq!(cases["search_answer"]["results"][0]["type"], "memory_node");
    assert_eq!(
        cases["search_answer"]["results"][1]["type"],
        "relationship_edge"
    );
    // Absent and null differ: `raw` has no `interpreted`; a failed summary is `null`.
    assert!(cases["search_answer"].get("interpreted").is_none());
    assert_eq!(
        cases["search_answer_interpreted_error"]["interpreted"],
        json!(null)
    );
}

/// Requests are lenient where the API names a missing field in its own 400.
#[test]
fn requests_take_what_the_public_client_sends() {
    let search: SearchRequest =
        serde_json::from_value(json!({"query": "tea", "rerank": true})).expect("parses");
    assert_eq!((search.k, search.rerank), (5, true));
    let tags: AddMemoryRequest =
        serde_json::from_value(json!({"content": "x", "tags": "a, b ,,c"})).expect("parses");
    assert_eq!(
        tags.tags.map(TagsInput::into_list),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    let link: LinkRequest = serde_json::from_value(json!({})).expect("parses");
    assert_eq!(link, LinkRequest::default());
}
