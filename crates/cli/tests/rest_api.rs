//! The Memory REST API over real HTTP, on SQLite and PostgreSQL: the contract the public
//! client parses, tenant isolation, keys, bounded reads and every bad-input answer.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestStack, node_ids};

on_both_backends!(
    contract_round_trip,
    tenants_never_see_each_other,
    keys_are_checked_before_anything_runs,
    bad_input_gets_clear_errors_and_harms_nothing,
    reads_are_bounded_and_say_so,
    memories_page_newest_first_and_only_the_operator_administers_keys,
    observation_times_date_memories_and_steer_search,
);

async fn contract_round_trip(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let api = stack.rest(&stack.key("alice").await);

    // Ingest: 202 with a durable job, then the job's result carries the memory.
    let (status, accepted) =
        api.post("/memories", json!({"content": "User drinks coffee every morning", "tags": ["drinks", "routine"], "category": "Habits"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["job_status"], "queued");
    let job_id = accepted["job_id"].as_str().unwrap();
    assert_eq!(
        accepted["status_url"],
        format!("/api/v1/memories/jobs/{job_id}")
    );
    assert!(accepted["created_at"].is_string());
    // Jobs of one tenant may finish out of order (two workers); let the first one land.
    api.wait_for_job(job_id).await;
    let coffee = api
        .add("User drinks coffee every morning", &["drinks"])
        .await;
    assert_eq!(
        coffee["action"], "merged",
        "same content again merges: {coffee}"
    );
    let coffee_id = coffee["memory_id"].as_str().unwrap().to_owned();
    let memory = &coffee["memory"];
    for field in [
        "id",
        "content",
        "tags",
        "category",
        "context",
        "keywords",
        "links",
        "evolution_history",
        "created_at",
        "updated_at",
    ] {
        assert!(!memory[field].is_null(), "memory lacks {field}: {memory}");
    }
    assert_eq!(memory["category"], "habits");
    assert_eq!(memory["tags"], json!(["drinks", "routine"]));

    let reflux = api
        .add_id("Coffee gives the user acid reflux", &["health"])
        .await;
    let brew = api
        .add_id("Cold brew is gentler on the stomach", &["drinks", "health"])
        .await;
    let auto_tagged = api.add("The user's cat is called Tom", &[]).await;
    assert!(
        !auto_tagged["memory"]["tags"].as_array().unwrap().is_empty(),
        "tags are derived when none are given"
    );

    // Links, then search shows related memories and matching edges.
    for (a, b, description) in [
        (&coffee_id, &reflux, "coffee causes the reflux"),
        (&reflux, &brew, "cold brew avoids reflux"),
    ] {
        let (status, linked) = api
            .post(
                "/memories/link",
                json!({"memory_id_1": a, "memory_id_2": b, "description": description}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{linked}");
    }
    let (status, found) = api
        .post(
            "/memories/search",
            json!({"query": "coffee in the morning", "k": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let results = found["results"].as_array().unwrap();
    assert_eq!(found["count"], results.len());
    assert_eq!(results[0]["type"], "memory_node");
    assert_eq!(results[0]["id"], coffee_id.as_str());
    assert!(results[0]["semantic_score"].as_f64().unwrap() > 0.0);
    assert_eq!(results[0]["related_memories"][0]["id"], reflux.as_str());
    // A link whose description answers the query better than either end is a result itself.
    let (status, found) = api
        .post(
            "/memories/search",
            json!({"query": "what causes the reflux?", "k": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "relationship_edge"
                && r["description"] == "coffee causes the reflux"
                && r["source"]["id"].is_string()),
        "{found}"
    );
    assert!(found.get("interpreted").is_none());

    let (_, interpreted) = api
        .post(
            "/memories/search",
            json!({"query": "coffee", "response_format": "both"}),
        )
        .await;
    assert!(interpreted["interpreted"].is_null());
    assert!(
        interpreted["interpreted_error"]
            .as_str()
            .unwrap()
            .contains("no language model")
    );
    assert!(interpreted["count"].as_u64().unwrap() >= 1);

    // Tag filters: an AND list, a single regex, and a scope list.
    let (_, filtered) = api
        .post(
            "/memories/search",
            json!({"query": "coffee stomach reflux", "keyword_filter": ["drinks", "^health$"]}),
        )
        .await;
    assert_eq!(node_ids(&filtered), [brew.as_str()]);
    // Its neighbour (reflux) is outside the filter, so it is not leaked as related or as an edge.
    assert_eq!(filtered["count"], 1, "{filtered}");
    assert_eq!(filtered["results"][0]["related_memories"], json!([]));
    let (_, scoped) = api
        .post(
            "/memories/search",
            json!({"query": "coffee", "scope_regex": "^rout"}),
        )
        .await;
    assert_eq!(scoped["results"][0]["id"], coffee_id.as_str());
    let (_, everything) = api
        .post(
            "/memories/search",
            json!({"query": "", "full_scope": true, "scope": ["health"]}),
        )
        .await;
    assert_eq!(everything["count"], 2, "{everything}");

    // Batch get and update with history.
    let (status, batch) = api
        .post(
            "/memories/batch",
            json!({"memory_ids": [reflux, coffee_id]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(batch["memories"][0]["id"], reflux.as_str());
    assert_eq!(
        batch["memories"][1]["links"][0]["memory_id"],
        reflux.as_str()
    );
    let (status, updated) = api.send(Method::PUT, &format!("/memories/{reflux}"), Some(json!({"content": "Coffee gives the user bad acid reflux", "tags": ["health", "diet"]}))).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["evolution_history"][0]["type"], "content_update");
    assert_eq!(
        updated["evolution_history"][0]["old_content"],
        "Coffee gives the user acid reflux"
    );
    assert!(updated["evolution_history"][0]["timestamp"].is_string());
    assert_eq!(updated["tags"], json!(["health", "diet"]));
    let (status, _) = api
        .send(
            Method::PUT,
            &format!("/memories/{reflux}"),
            Some(json!({"content": "user drinks COFFEE every morning"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an update may not duplicate another memory"
    );

    // Graph: path, neighbourhood, traversal.
    let (status, path) = api
        .get(&format!("/graph/path?from_id={coffee_id}&to_id={brew}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(path["found"], true);
    assert_eq!(path["hops"], 2);
    assert_eq!(path["edges"][1]["description"], "cold brew avoids reflux");
    let (_, near) = api
        .get(&format!("/graph/neighborhood?memory_id={coffee_id}&hops=1"))
        .await;
    assert_eq!(near["count"], 2);
    let (_, far) = api
        .get(&format!("/graph/neighborhood?memory_id={coffee_id}&hops=2"))
        .await;
    assert_eq!(far["count"], 3);
    let (_, walk) = api.get(&format!("/graph/traverse?start_memory_id={coffee_id}&query=reflux&max_hops=3&edge_similarity_threshold=0.5")).await;
    assert_eq!(walk["memory_count"], 3, "{walk}");
    assert_eq!(walk["edge_count"], 2);
    let (_, strict) = api.get(&format!("/graph/traverse?start_memory_id={coffee_id}&query=causes%20coffee%20reflux&max_hops=3&edge_similarity_threshold=0.8")).await;
    assert_eq!(
        strict["memory_count"], 2,
        "only the edge that says what the query says is taken: {strict}"
    );

    // Unlink, stats, delete.
    let (status, _) = api
        .post(
            "/memories/unlink",
            json!({"memory_id_1": brew, "memory_id_2": reflux}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .post(
            "/memories/unlink",
            json!({"memory_id_1": brew, "memory_id_2": reflux}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, no_path) = api
        .get(&format!("/graph/path?from_id={coffee_id}&to_id={brew}"))
        .await;
    assert_eq!(no_path["found"], false);
    let (_, stats) = api.get("/stats").await;
    assert_eq!(stats["total_memories"], 4);
    assert_eq!(stats["total_links"], 1);
    assert_eq!(stats["avg_links_per_memory"], 0.25);
    assert_eq!(stats["top_tags"][0], json!({"tag": "drinks", "count": 2}));
    let (status, deleted) = api
        .send(Method::DELETE, "/memories/bulk?tags=drinks,health", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["deleted_count"], 1);
    assert_eq!(deleted["memory_ids"], json!([brew]));
    let (_, by_id) = api
        .send(
            Method::DELETE,
            &format!("/memories/bulk?memory_id={coffee_id}&tags=ignored"),
            None,
        )
        .await;
    assert_eq!(by_id["memory_ids"], json!([coffee_id]));
    let (_, by_category) = api
        .send(Method::DELETE, "/memories/bulk?category=general", None)
        .await;
    assert_eq!(by_category["deleted_count"], 2);
    let (_, stats) = api.get("/stats").await;
    assert_eq!(stats["total_memories"], 0);
    assert_eq!(stats["avg_links_per_memory"], 0.0);
}

async fn tenants_never_see_each_other(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let alice = stack.rest(&stack.key("alice").await);
    let bob = stack.rest(&stack.key("bob").await);
    let a1 = alice
        .add_id("Alice's secret project is called Falcon", &["work"])
        .await;
    let a2 = alice.add_id("Falcon ships in March", &["work"]).await;
    alice
        .post(
            "/memories/link",
            json!({"memory_id_1": a1, "memory_id_2": a2, "description": "falcon schedule"}),
        )
        .await;
    let (status, accepted) = alice.post("/memories", json!({"content": "pending"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job = accepted["job_id"].as_str().unwrap();

    let (_, found) = bob
        .post(
            "/memories/search",
            json!({"query": "Falcon project", "k": 10}),
        )
        .await;
    assert_eq!(found["count"], 0, "{found}");
    let (_, everything) = bob
        .post("/memories/search", json!({"query": "", "full_scope": true}))
        .await;
    assert_eq!(everything["count"], 0);
    let forbidden: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/memories/batch".into(),
            Some(json!({"memory_ids": [a1]})),
        ),
        (Method::GET, format!("/memories/{a1}"), None),
        (
            Method::PUT,
            format!("/memories/{a1}"),
            Some(json!({"content": "hijacked"})),
        ),
        (
            Method::DELETE,
            format!("/memories/bulk?memory_id={a1}"),
            None,
        ),
        (Method::GET, format!("/memories/jobs/{job}"), None),
        (
            Method::GET,
            format!("/graph/path?from_id={a1}&to_id={a2}"),
            None,
        ),
        (
            Method::GET,
            format!("/graph/neighborhood?memory_id={a1}"),
            None,
        ),
        (
            Method::GET,
            format!("/graph/traverse?start_memory_id={a1}&query=falcon"),
            None,
        ),
        (
            Method::POST,
            "/memories/unlink".into(),
            Some(json!({"memory_id_1": a1, "memory_id_2": a2})),
        ),
        (
            Method::POST,
            "/memories/link".into(),
            Some(json!({"memory_id_1": a1, "memory_id_2": a2, "description": "x"})),
        ),
    ];
    for (method, path, body) in forbidden {
        let (status, answer) = bob.send(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found");
    }
    let (_, deleted) = bob
        .send(Method::DELETE, "/memories/bulk?tags=work", None)
        .await;
    assert_eq!(deleted["deleted_count"], 0);
    let (_, stats) = bob.get("/stats").await;
    assert_eq!(
        (
            stats["total_memories"].as_u64(),
            stats["total_links"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let (_, alice_stats) = alice.get("/stats").await;
    assert!(alice_stats["total_memories"].as_u64().unwrap() >= 2);
    let (_, batch) = alice
        .post("/memories/batch", json!({"memory_ids": [a1]}))
        .await;
    assert_eq!(
        batch["memories"][0]["content"],
        "Alice's secret project is called Falcon"
    );
}

async fn keys_are_checked_before_anything_runs(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let key = stack.key("alice").await;
    let (status, answer) = stack
        .rest_without_key()
        .post("/memories", json!({"content": "x"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-API-Key")
    );
    let (status, _) = stack.rest("mb_not_a_real_key_at_all").get("/stats").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Bearer works as well as X-API-Key.
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/stats", stack.api_url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Revoked keys stop working (the test stack caches nothing).
    let records = membrain_store::MemoryStore::list_keys(stack.store.as_ref())
        .await
        .unwrap();
    membrain_store::MemoryStore::revoke_key(stack.store.as_ref(), &records[0].id)
        .await
        .unwrap();
    let (status, answer) = stack.rest(&key).get("/stats").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    // Health and readiness need no key.
    let health: Value = reqwest::get(format!("{}/health", stack.api_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
    let ready = reqwest::get(format!("{}/ready", stack.api_url))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

async fn bad_input_gets_clear_errors_and_harms_nothing(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let api = stack.rest(&stack.key("alice").await);
    let kept = api
        .add_id("A memory that must survive bad requests", &["keep"])
        .await;
    let unknown = "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b";
    let cases: Vec<(Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/memories".into(),
            Some(json!({"content": ""})),
            StatusCode::BAD_REQUEST,
            "content",
        ),
        (
            Method::POST,
            "/memories".into(),
            Some(json!({"content": " \n\t "})),
            StatusCode::BAD_REQUEST,
            "content",
        ),
        (
            Method::POST,
            "/memories".into(),
            Some(json!({"content": "x".repeat(70_000)})),
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            Method::POST,
            "/memories".into(),
            Some(json!({"content": 42})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "content",
        ),
        (
            Method::POST,
            "/memories".into(),
            Some(json!({"tags": ["a"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "content",
        ),
        (
            Method::POST,
            "/memories".into(),
            Some(json!({"content": "x", "tags": [1, 2]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tags",
        ),
        (
            Method::POST,
            "/memories".into(),
            Some(json!({"content": "x", "ingestion_scope": "(("})),
            StatusCode::BAD_REQUEST,
            "ingestion_scope",
        ),
        (
            Method::POST,
            "/memories/search".into(),
            Some(json!({"query": "x", "k": 0})),
            StatusCode::BAD_REQUEST,
            "between 1 and 100",
        ),
        (
            Method::POST,
            "/memories/search".into(),
            Some(json!({"query": "x", "k": 101})),
            StatusCode::BAD_REQUEST,
            "between 1 and 100",
        ),
        (
            Method::POST,
            "/memories/search".into(),
            Some(json!({"query": "x", "k": "five"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "k",
        ),
        (
            Method::POST,
            "/memories/search".into(),
            Some(json!({"query": ""})),
            StatusCode::BAD_REQUEST,
            "query",
        ),
        (
            Method::POST,
            "/memories/search".into(),
            Some(json!({"query": "x", "keyword_filter": "a", "scope_regex": "b"})),
            StatusCode::BAD_REQUEST,
            "keyword_filter",
        ),
        (
            Method::POST,
            "/memories/search".into(),
            Some(json!({"query": "x", "scope_regex": "[unclosed"})),
            StatusCode::BAD_REQUEST,
            "not a valid regex",
        ),
        (
            Method::POST,
            "/memories/search".into(),
            Some(json!({"query": "x", "scope_regex": "(a{1000}){1000}"})),
            StatusCode::BAD_REQUEST,
            "scope_regex",
        ),
        (
            Method::POST,
            "/memories/search".into(),
            Some(json!({"query": "x", "response_format": "poem"})),
            StatusCode::BAD_REQUEST,
            "response_format",
        ),
        (
            Method::POST,
            "/memories/batch".into(),
            Some(json!({"memory_ids": []})),
            StatusCode::BAD_REQUEST,
            "memory_ids",
        ),
        (
            Method::POST,
            "/memories/batch".into(),
            Some(json!({"memory_ids": ["nope"]})),
            StatusCode::BAD_REQUEST,
            "memory_ids[0]",
        ),
        (
            Method::POST,
            "/memories/batch".into(),
            Some(json!({"memory_ids": [unknown]})),
            StatusCode::NOT_FOUND,
            unknown,
        ),
        (
            Method::PUT,
            format!("/memories/{kept}"),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "nothing to update",
        ),
        (
            Method::PUT,
            format!("/memories/{kept}"),
            Some(json!({"observed_at": "soon"})),
            StatusCode::BAD_REQUEST,
            "observed_at",
        ),
        (
            Method::PUT,
            format!("/memories/{kept}"),
            Some(json!({"observed_at": "2999-01-01"})),
            StatusCode::BAD_REQUEST,
            "in the future",
        ),
        (
            Method::PUT,
            format!("/memories/{unknown}"),
            Some(json!({"content": "x"})),
            StatusCode::NOT_FOUND,
            unknown,
        ),
        (
            Method::PUT,
            "/memories/not-an-id".into(),
            Some(json!({"content": "x"})),
            StatusCode::BAD_REQUEST,
            "memory_id",
        ),
        (
            Method::DELETE,
            "/memories/bulk".into(),
            None,
            StatusCode::BAD_REQUEST,
            "without a filter",
        ),
        (
            Method::DELETE,
            "/memories/bulk?tags=&category=".into(),
            None,
            StatusCode::BAD_REQUEST,
            "without a filter",
        ),
        (
            Method::DELETE,
            format!("/memories/bulk?memory_id={unknown}"),
            None,
            StatusCode::NOT_FOUND,
            unknown,
        ),
        (
            Method::GET,
            "/memories/jobs/bogus".into(),
            None,
            StatusCode::BAD_REQUEST,
            "job_id",
        ),
        (
            Method::GET,
            format!("/memories/jobs/{unknown}"),
            None,
            StatusCode::NOT_FOUND,
            unknown,
        ),
        (
            Method::GET,
            format!("/graph/neighborhood?memory_id={kept}&hops=0"),
            None,
            StatusCode::BAD_REQUEST,
            "between 1 and 5",
        ),
        (
            Method::GET,
            format!("/graph/neighborhood?memory_id={kept}&hops=6"),
            None,
            StatusCode::BAD_REQUEST,
            "between 1 and 5",
        ),
        (
            Method::GET,
            format!("/graph/neighborhood?memory_id={kept}&hops=two"),
            None,
            StatusCode::BAD_REQUEST,
            "hops",
        ),
        (
            Method::GET,
            format!("/graph/traverse?start_memory_id={kept}&query=x&max_hops=9"),
            None,
            StatusCode::BAD_REQUEST,
            "max_hops",
        ),
        (
            Method::GET,
            format!("/graph/traverse?start_memory_id={kept}&query=x&edge_similarity_threshold=1.5"),
            None,
            StatusCode::BAD_REQUEST,
            "edge_similarity_threshold",
        ),
        (
            Method::GET,
            format!("/graph/traverse?start_memory_id={kept}&query=x&scope_regex=^other$"),
            None,
            StatusCode::BAD_REQUEST,
            "scope",
        ),
        (
            Method::GET,
            format!("/graph/traverse?start_memory_id={kept}"),
            None,
            StatusCode::BAD_REQUEST,
            "query",
        ),
        (
            Method::GET,
            format!("/graph/path?from_id={kept}"),
            None,
            StatusCode::BAD_REQUEST,
            "to_id",
        ),
        (
            Method::GET,
            format!("/graph/path?from_id={kept}&to_id={unknown}"),
            None,
            StatusCode::NOT_FOUND,
            "to_id",
        ),
        (
            Method::POST,
            "/memories/link".into(),
            Some(json!({"memory_id_1": kept, "memory_id_2": kept, "description": "self"})),
            StatusCode::BAD_REQUEST,
            "memory_id_2",
        ),
        (
            Method::POST,
            "/memories/link".into(),
            Some(json!({"memory_id_1": kept, "memory_id_2": unknown})),
            StatusCode::BAD_REQUEST,
            "description",
        ),
        (
            Method::POST,
            "/memories/unlink".into(),
            Some(json!({"memory_id_1": kept})),
            StatusCode::BAD_REQUEST,
            "memory_id_2",
        ),
        (
            Method::GET,
            "/no/such/route".into(),
            None,
            StatusCode::NOT_FOUND,
            "no such route",
        ),
        (
            Method::PATCH,
            "/stats".into(),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
        ),
    ];
    for (method, path, body, status, hint) in cases {
        let (got, answer) = api.send(method.clone(), &path, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no error message: {answer}"));
        assert!(answer["error"]["code"].is_string());
        assert!(
            message.contains(hint),
            "{method} {path}: {message:?} should mention {hint:?}"
        );
    }

    // Not JSON, the wrong content type, a body over the limit.
    let http = reqwest::Client::new();
    let url = format!("{}/memories", api.base);
    let key = &stack.key("alice").await;
    let syntax = http
        .post(&url)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(syntax.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        syntax.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );
    let plain = http
        .post(&url)
        .header("x-api-key", key)
        .body("content=x")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({"content": "y".repeat(2 * 1024 * 1024)});
    let too_big = http
        .post(&url)
        .header("x-api-key", key)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        too_big.json::<Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );

    // Nothing stored was harmed.
    let (_, batch) = api
        .post("/memories/batch", json!({"memory_ids": [kept]}))
        .await;
    assert_eq!(
        batch["memories"][0]["content"],
        "A memory that must survive bad requests"
    );
    let (_, stats) = api.get("/stats").await;
    assert_eq!(stats["total_memories"], 1);
}

async fn reads_are_bounded_and_say_so(backend: membrain_store::Backend) {
    let stack = TestStack::spawn_with(backend, |settings| {
        settings.limits.max_result_memories = 3;
        settings.limits.max_graph_nodes = 3;
    })
    .await;
    let api = stack.rest(&stack.key("alice").await);
    let hub = api.add_id("hub memory about gardening", &["garden"]).await;
    // Distinct facts: near-duplicates would merge into one memory.
    for note in [
        "tomato seedlings need full sun",
        "the roses were pruned in March",
        "the compost heap is warm",
        "slugs ate the lettuce",
        "the hedge needs trimming",
    ] {
        let leaf = api.add_id(note, &["garden"]).await;
        api.post(
            "/memories/link",
            json!({"memory_id_1": hub, "memory_id_2": leaf, "description": "gardening"}),
        )
        .await;
    }
    let (_, all) = api
        .post("/memories/search", json!({"query": "", "full_scope": true}))
        .await;
    assert_eq!(all["count"], 3);
    assert_eq!(all["truncated"], true);
    let (_, near) = api
        .get(&format!("/graph/neighborhood?memory_id={hub}&hops=1"))
        .await;
    assert_eq!(near["count"], 3);
    assert_eq!(near["truncated"], true);
    let (_, small) = api
        .post("/memories/search", json!({"query": "hub", "k": 1}))
        .await;
    assert_eq!(small["truncated"], false);
}

async fn memories_page_newest_first_and_only_the_operator_administers_keys(
    backend: membrain_store::Backend,
) {
    const OPERATOR: &str = "mb_operator_rest_test_0123456789";
    let stack = TestStack::spawn_with(backend, |settings| {
        settings.operator_key = membrain_auth::ApiKey::new(OPERATOR);
    })
    .await;
    let tenant_key = stack.key("alice").await;
    let alice = stack.rest(&tenant_key);
    let mut added = Vec::new();
    // Unlike texts: near-duplicates would merge into one memory.
    for (content, tag) in [
        ("The user's cat is called Miso", "one"),
        ("Quarterly taxes are due in April", "two"),
        ("The office moved to Lisbon last spring", "one"),
    ] {
        added.push(alice.add_id(content, &[tag]).await);
    }
    stack
        .rest(&stack.key("bob").await)
        .add_id("Bob's own fact", &["one"])
        .await;

    // Newest first, two a page, then the rest; the cursor goes on where the page ended.
    let (status, first) = alice.get("/memories?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let ids = |page: &Value| -> Vec<String> {
        page["memories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), [added[2].clone(), added[1].clone()]);
    assert_eq!(first["count"], 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = alice
        .get(&format!("/memories?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids(&second), [added[0].clone()]);
    assert_eq!(second["next_cursor"], Value::Null);
    let (_, tagged) = alice.get("/memories?tag=ONE").await;
    assert_eq!(
        ids(&tagged),
        [added[2].clone(), added[0].clone()],
        "{tagged}"
    );
    for bad in ["limit=0", "limit=100000", "cursor=garbage", "limit=x"] {
        let (status, body) = alice.get(&format!("/memories?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"]["message"].is_string());
    }

    // Key administration: the operator key only.
    let operator = stack.rest(OPERATOR);
    let (status, body) = alice.get("/admin/keys").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("operator key")
    );
    let (status, _) = stack.rest_without_key().get("/admin/keys").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = operator.get("/auth/whoami").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the operator key is no tenant's key"
    );

    let (status, created) = operator
        .post("/admin/keys", json!({"tenant": "carol", "label": "laptop"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["tenant"], "carol");
    let new_key = created["key"].as_str().unwrap();
    let (status, who) = stack.rest(new_key).get("/auth/whoami").await;
    assert_eq!(
        (status, who["tenant"].as_str()),
        (StatusCode::OK, Some("carol"))
    );
    let (status, listed) = operator.get("/admin/keys").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["count"], 3, "alice, bob and carol: {listed}");
    assert!(
        !listed.to_string().contains(new_key),
        "keys are listed without their secret"
    );
    for (body, field) in [
        (json!({}), "tenant"),
        (json!({"tenant": "no spaces"}), "tenant"),
    ] {
        let (status, refused) = operator.post("/admin/keys", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field)
        );
    }
    let id = created["id"].as_str().unwrap();
    let (status, revoked) = operator
        .post(&format!("/admin/keys/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = stack.rest(new_key).get("/auth/whoami").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = operator
        .post("/admin/keys/key_nope/revoke", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Without an operator key configured, nobody administers keys.
    let plain = TestStack::spawn(backend).await;
    let (status, body) = plain.rest(OPERATOR).get("/admin/keys").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no operator key")
    );
}

async fn observation_times_date_memories_and_steer_search(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let api = stack.rest(&stack.key("alice").await);
    let add_observed = |content: &'static str, observed_at: &'static str| {
        let api = &api;
        async move {
            let (status, accepted) = api
                .post(
                    "/memories",
                    json!({"content": content, "observed_at": observed_at}),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
            api.wait_for_job(accepted["job_id"].as_str().unwrap()).await["result"]["memory"].clone()
        }
    };
    // A dated fact keeps its time; an undated one was observed when it was stored.
    let june = add_observed("Had tea with Anna at the harbour", "2023-06-02T10:00:00Z").await;
    assert_eq!(june["observed_at"], "2023-06-02T10:00:00Z", "{june}");
    let october = add_observed("Tea at the market with friends", "2023-10-13").await;
    assert_eq!(october["observed_at"], "2023-10-13T00:00:00Z", "{october}");
    let today = api.add("The user bought a teapot", &[]).await;
    assert_eq!(
        today["memory"]["observed_at"], today["memory"]["created_at"],
        "{today}"
    );
    let (_, read) = api
        .get(&format!("/memories/{}", october["id"].as_str().unwrap()))
        .await;
    assert_eq!(read["observed_at"], "2023-10-13T00:00:00Z");

    // Without a time, the closer wording leads; naming the time brings the fact observed then.
    let first = |query: &'static str| {
        let api = &api;
        async move {
            let (status, found) = api
                .post("/memories/search", json!({"query": query, "k": 3}))
                .await;
            assert_eq!(status, StatusCode::OK, "{found}");
            found["results"][0]["id"].clone()
        }
    };
    assert_eq!(first("tea with Anna at the harbour").await, june["id"]);
    assert_eq!(first("tea in October 2023").await, october["id"]);
    assert_eq!(first("tea in June").await, june["id"]);

    // observed_after / observed_before keep only the memories observed within them, in every
    // ranking; an end may be left open.
    let within = |window: Value| {
        let api = &api;
        async move {
            let mut body = json!({"query": "tea with Anna at the harbour", "k": 10});
            for (field, value) in window.as_object().unwrap() {
                body[field] = value.clone();
            }
            let (status, found) = api.post("/memories/search", body).await;
            assert_eq!(status, StatusCode::OK, "{found}");
            node_ids(&found)
        }
    };
    let autumn = json!({"observed_after": "2023-09-01", "observed_before": "2024-01-01T00:00:00Z"});
    let id = |memory: &Value| memory["id"].as_str().unwrap().to_owned();
    assert_eq!(within(autumn.clone()).await, [id(&october)]);
    for ranking in ["lexical", "dense"] {
        let mut asked = autumn.clone();
        asked["ranking"] = json!(ranking);
        assert_eq!(within(asked).await, [id(&october)], "{ranking}");
    }
    let before_autumn = within(json!({"observed_before": "2023-09-01"})).await;
    assert_eq!(before_autumn, [id(&june)]);
    let since = within(json!({"observed_after": "2023-10-13"})).await;
    assert!(
        since.contains(&id(&october)) && since.contains(&id(&today["memory"])),
        "{since:?}"
    );
    assert!(!since.contains(&id(&june)), "{since:?}");
    // A wrongly dated memory is corrected in place: the search finds it at its new time, and
    // its content and history are untouched.
    let (status, moved) = api
        .put(
            &format!("/memories/{}", id(&june)),
            json!({"observed_at": "2023-11-20"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["observed_at"], "2023-11-20T00:00:00Z", "{moved}");
    assert_eq!(moved["content"], june["content"]);
    assert_eq!(moved["evolution_history"], june["evolution_history"]);
    let mut in_autumn = within(autumn.clone()).await;
    in_autumn.sort();
    let mut expected = [id(&june), id(&october)];
    expected.sort();
    assert_eq!(in_autumn, expected);
    assert!(
        within(json!({"observed_before": "2023-09-01"}))
            .await
            .is_empty()
    );
    // An empty window and a bad time say what is wrong.
    for (window, says) in [
        (
            json!({"observed_after": "2024-01-01", "observed_before": "2023-01-01"}),
            "observed_before",
        ),
        (json!({"observed_after": "soon"}), "observed_after"),
    ] {
        let mut body = json!({"query": "tea", "k": 3});
        for (field, value) in window.as_object().unwrap() {
            body[field] = value.clone();
        }
        let (status, refused) = api.post("/memories/search", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }

    // Bad times are refused with the field named and the forms that work.
    for (bad, says) in [
        ("last Tuesday", "RFC 3339"),
        ("2023-02-30", "RFC 3339"),
        ("2999-01-01", "future"),
    ] {
        let (status, refused) = api
            .post("/memories", json!({"content": "x", "observed_at": bad}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("observed_at") && message.contains(says),
            "{bad}: {message}"
        );
    }
    let (status, refused) = api
        .post(
            "/memories",
            json!({"content": "x", "observed_at": 20230101}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("observed_at"),
        "{refused}"
    );
}
