//! Semantic memory end to end, with the real all-MiniLM-L6-v2, on SQLite and PostgreSQL: recall
//! by meaning, near-duplicate merging, automatic described links, traversal by meaning, index
//! consistency (deletes, restarts, other processes, tenants) and the language-model path against
//! a local stand-in for an OpenAI-compatible server.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use std::sync::Arc;

use reqwest::StatusCode;
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};
use support::{Rest, TestStack, node_ids};

on_both_backends!(
    a_paraphrase_finds_its_fact_where_lexical_search_cannot,
    a_near_duplicate_is_merged_with_history,
    related_memories_are_linked_with_descriptions,
    memories_that_mention_the_same_name_are_linked_however_unlike,
    traversal_follows_edges_by_meaning_within_hops_and_scope,
    a_deleted_memory_never_comes_back_from_the_index,
    another_process_and_a_restart_give_identical_results,
    tenants_vectors_never_mix,
    a_language_model_writes_tags_context_links_and_answers,
    vectors_of_another_model_are_remade_in_the_background,
    a_failing_embedder_degrades_to_lexical_and_says_so,
);

async fn search(rest: &Rest, body: Value) -> Value {
    let (status, answer) = rest.post("/memories/search", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

const FACTS: [&str; 6] = [
    "The user is allergic to peanuts",
    "The user drives a red Toyota Corolla",
    "The user's sister Anna lives in Berlin",
    "The user plays tennis every Saturday",
    "The user works as a software engineer at a bank",
    "The user adopted a cat named Miso last spring",
];

async fn a_paraphrase_finds_its_fact_where_lexical_search_cannot(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let rest = stack.rest(&stack.key("alice").await);
    let mut ids = Vec::new();
    for fact in FACTS {
        ids.push(rest.add_id(fact, &["profile"]).await);
    }
    // No word in common with the allergy fact ("profile" is every memory's tag).
    let query = "Which foods could make them ill?";
    let lexical = search(
        &rest,
        json!({ "query": query, "k": 3, "ranking": "lexical" }),
    )
    .await;
    assert!(
        !node_ids(&lexical).contains(&ids[0]),
        "lexical ranking should not find it: {lexical}"
    );
    for ranking in ["hybrid", "dense"] {
        let answer = search(&rest, json!({ "query": query, "k": 3, "ranking": ranking })).await;
        assert_eq!(node_ids(&answer)[0], ids[0], "{ranking}: {answer}");
        let top = &answer["results"][0];
        assert!(top["semantic_score"].as_f64().unwrap() > 0.3, "{top}");
    }
    // The default is hybrid.
    let answer = search(
        &rest,
        json!({ "query": "What car does the user drive?", "k": 1 }),
    )
    .await;
    assert_eq!(node_ids(&answer), vec![ids[1].clone()], "{answer}");
    // A tag filter applies before ranking: the best match outside the scope is never listed.
    rest.add("The user is allergic to cats", &["health"]).await;
    let answer = search(
        &rest,
        json!({ "query": query, "k": 5, "keyword_filter": ["health"] }),
    )
    .await;
    let ids_in_scope = node_ids(&answer);
    assert_eq!(ids_in_scope.len(), 1, "{answer}");
    assert!(!ids_in_scope.contains(&ids[0]));
    // Bad ranking names are refused with the choices.
    let (status, error) = rest
        .post(
            "/memories/search",
            json!({ "query": "x", "ranking": "magic" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hybrid")
    );
}

async fn a_near_duplicate_is_merged_with_history(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let rest = stack.rest(&stack.key("alice").await);
    let first = rest
        .add("The user loves drinking coffee in the morning", &["habits"])
        .await;
    let second = rest
        .add("Every morning the user loves to drink coffee", &["coffee"])
        .await;
    assert_eq!(second["action"], "merged", "{second}");
    assert_eq!(second["memory_id"], first["memory_id"]);
    let memory = &second["memory"];
    assert_eq!(
        memory["content"],
        "Every morning the user loves to drink coffee"
    );
    assert_eq!(memory["tags"], json!(["habits", "coffee"]));
    let history = memory["evolution_history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{memory}");
    assert_eq!(history[0]["type"], "near_duplicate_merge");
    assert_eq!(
        history[0]["old_content"],
        "The user loves drinking coffee in the morning"
    );
    assert!(history[0]["similarity"].as_f64().unwrap() >= 0.9);
    // The opposite statement is close in words but not a duplicate: it is stored on its own.
    let opposite = rest
        .add("The user hates drinking coffee in the morning", &[])
        .await;
    assert_eq!(opposite["action"], "created", "{opposite}");
    let (_, stats) = rest.get("/stats").await;
    assert_eq!(stats["total_memories"], 2, "{stats}");

    // Issue 15: one template, other numbers and markers: alike in meaning, distinct facts. The
    // second is stored on its own and linked, and the first stays findable by its own words.
    let third = rest
        .add(
            "Bulk import test record number 3, marker 9b00e4, written by the loader",
            &[],
        )
        .await;
    let fourth = rest
        .add(
            "Bulk import test record number 4, marker 80d252, written by the loader",
            &[],
        )
        .await;
    assert_eq!(fourth["action"], "created", "{fourth}");
    assert_ne!(fourth["memory_id"], third["memory_id"]);
    let linked: Vec<&Value> = fourth["memory"]["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|link| &link["memory_id"])
        .collect();
    assert!(linked.contains(&&third["memory_id"]), "{fourth}");
    // What a merge or an update replaced is still found by its own words (lexical ranking
    // reads the earlier wordings; the vector is the new content's).
    let id = first["memory_id"].as_str().unwrap();
    let (status, updated) = rest
        .put(
            &format!("/memories/{id}"),
            json!({ "content": "The user switched to green tea in the afternoon" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let by_old_words = search(
        &rest,
        json!({ "query": "morning", "k": 3, "ranking": "lexical" }),
    )
    .await;
    assert!(
        node_ids(&by_old_words).iter().any(|found| found == id),
        "{by_old_words}"
    );
    let found = search(&rest, json!({ "query": "marker 9b00e4", "k": 1 })).await;
    assert_eq!(
        node_ids(&found),
        [third["memory_id"].as_str().unwrap()],
        "{found}"
    );
}

async fn related_memories_are_linked_with_descriptions(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let rest = stack.rest(&stack.key("alice").await);
    let coffee = rest
        .add_id("User drinks three cups of coffee a day", &["habits"])
        .await;
    let cat = rest
        .add_id("The user adopted a cat named Miso", &["pets"])
        .await;
    let reflux = rest
        .add("Coffee gives the user acid reflux", &["health"])
        .await;
    let links = reflux["memory"]["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "linked to the coffee habit only: {reflux}");
    assert_eq!(links[0]["memory_id"], coffee.as_str());
    assert_eq!(links[0]["description"], "both about coffee");
    // Search shows the neighbour as a related memory of the result.
    let answer = search(&rest, json!({ "query": "acid reflux", "k": 1 })).await;
    let related = &answer["results"][0]["related_memories"];
    assert_eq!(related[0]["id"], coffee.as_str(), "{answer}");
    assert_eq!(related[0]["relationship"], "both about coffee");
    // ingestion_scope limits what a new memory may link to: the same text links to the coffee
    // habit without a scope, and only to health memories with one.
    let linked_to = |job: &Value| -> Vec<String> {
        job["result"]["memory"]["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["memory_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let unscoped = rest
        .post(
            "/memories",
            json!({ "content": "Coffee keeps the user awake at night" }),
        )
        .await;
    let unscoped = rest
        .wait_for_job(unscoped.1["job_id"].as_str().unwrap())
        .await;
    assert!(linked_to(&unscoped).contains(&coffee), "{unscoped}");
    let scoped = rest
        .post(
            "/memories",
            json!({ "content": "Strong coffee keeps the user up late", "ingestion_scope": "^health$" }),
        )
        .await;
    assert_eq!(scoped.0, StatusCode::ACCEPTED);
    let scoped = rest
        .wait_for_job(scoped.1["job_id"].as_str().unwrap())
        .await;
    let links = linked_to(&scoped);
    assert!(!links.is_empty(), "{scoped}");
    let reflux_id = reflux["memory_id"].as_str().unwrap().to_owned();
    assert!(
        links.iter().all(|id| *id == reflux_id),
        "only health memories: {scoped}"
    );
    let _ = cat;
    // An edge whose description matches better than either end is a result of its own.
    let a = rest.add_id("Anna called on Tuesday", &["people"]).await;
    let b = rest.add_id("The boiler broke down", &["house"]).await;
    let (status, _) = rest
        .post(
            "/memories/link",
            json!({ "memory_id_1": a, "memory_id_2": b,
                    "description": "Anna is a plumber who repaired the heating" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer = search(
        &rest,
        json!({ "query": "who repaired the heating?", "k": 3 }),
    )
    .await;
    let edge = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "relationship_edge")
        .unwrap_or_else(|| panic!("no relationship_edge in {answer}"));
    assert_eq!(
        edge["description"],
        "Anna is a plumber who repaired the heating"
    );
}

/// The other ends of a memory's links with their descriptions.
fn links_of(memory: &Value) -> Vec<(String, String)> {
    memory["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["memory_id"].as_str().unwrap().to_owned(),
                l["description"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn memories_that_mention_the_same_name_are_linked_however_unlike(
    backend: membrain_store::Backend,
) {
    let stack = TestStack::spawn(backend).await;
    let rest = stack.rest(&stack.key("alice").await);
    let startup = rest
        .add_id(
            "The bike startup where I work builds cargo e-bikes",
            &["work"],
        )
        .await;
    let pastry = rest
        .add_id("Lisbon has the best pastel de nata", &["food"])
        .await;
    let peanuts = rest.add_id("The user is allergic to peanuts", &[]).await;
    // Tags and context from the text's names and phrases, without a language model.
    let moved = rest
        .add(
            "I moved from Berlin to Lisbon in March 2024 for a job at a bike startup",
            &[],
        )
        .await;
    let memory = &moved["memory"];
    assert_eq!(memory["tags"], json!(["berlin", "lisbon", "bike startup"]));
    assert_eq!(
        memory["context"],
        "A general memory about Berlin, Lisbon and a bike startup (March 2024)."
    );
    // Linked to both memories that mention what it names, however unlike in meaning they are
    // (pastries and moving house), and to nothing else.
    let links = links_of(memory);
    assert!(
        links.contains(&(startup.clone(), "both mention the bike startup".to_owned())),
        "{memory}"
    );
    assert!(
        links.contains(&(pastry.clone(), "both mention Lisbon".to_owned())),
        "{memory}"
    );
    assert!(links.iter().all(|(id, _)| *id != peanuts), "{memory}");
    // ingestion_scope holds for these links too.
    let (status, accepted) = rest
        .post(
            "/memories",
            json!({ "content": "Back in Lisbon the bike startup opened a second shop",
                    "ingestion_scope": "^food$" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let scoped = rest
        .wait_for_job(accepted["job_id"].as_str().unwrap())
        .await;
    assert_eq!(
        links_of(&scoped["result"]["memory"]),
        [(pastry, "both mention Lisbon".to_owned())],
        "{scoped}"
    );
}

async fn link(rest: &Rest, a: &str, b: &str, description: &str) {
    let (status, answer) = rest
        .post(
            "/memories/link",
            json!({ "memory_id_1": a, "memory_id_2": b, "description": description }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn traversal_follows_edges_by_meaning_within_hops_and_scope(
    backend: membrain_store::Backend,
) {
    let stack = TestStack::spawn(backend).await;
    let rest = stack.rest(&stack.key("alice").await);
    // Unrelated contents, so ingest makes no links of its own; the edges below are the graph.
    let start = rest
        .add_id("Tuesday dinner was spicy curry", &["food"])
        .await;
    let heartburn = rest.add_id("Woke up at 3am", &["health"]).await;
    let doctor = rest.add_id("Appointment with Dr. Weber", &["health"]).await;
    let market = rest
        .add_id("The farmers market opens at nine", &["errands"])
        .await;
    let private = rest.add_id("Pharmacy receipt", &["private"]).await;
    link(
        &rest,
        &start,
        &heartburn,
        "the spicy food caused heartburn and stomach pain",
    )
    .await;
    link(
        &rest,
        &heartburn,
        &doctor,
        "saw a doctor about the stomach pain",
    )
    .await;
    link(
        &rest,
        &start,
        &market,
        "the vegetables were bought at the market",
    )
    .await;
    link(
        &rest,
        &heartburn,
        &private,
        "bought medicine for the stomach pain",
    )
    .await;

    let traverse = |hops: u32, threshold: f64, scope: Option<&str>| {
        let mut path = format!(
            "/graph/traverse?start_memory_id={start}&query=stomach%20pain&max_hops={hops}\
             &edge_similarity_threshold={threshold}"
        );
        if let Some(scope) = scope {
            path.push_str(&format!("&scope_regex={scope}"));
        }
        path
    };
    let reached = |answer: &Value| -> Vec<String> {
        answer["memories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, two_hops) = rest.get(&traverse(2, 0.4, None)).await;
    assert_eq!(status, StatusCode::OK, "{two_hops}");
    let ids = reached(&two_hops);
    for wanted in [&start, &heartburn, &doctor, &private] {
        assert!(ids.contains(wanted), "{wanted} missing from {two_hops}");
    }
    assert!(
        !ids.contains(&market),
        "the market edge is not about stomach pain: {two_hops}"
    );
    for edge in two_hops["traversed_edges"].as_array().unwrap() {
        assert!(edge["similarity"].as_f64().unwrap() >= 0.4, "{edge}");
    }
    let (_, one_hop) = rest.get(&traverse(1, 0.4, None)).await;
    assert_eq!(reached(&one_hop), vec![start.clone(), heartburn.clone()]);
    let (_, scoped) = rest.get(&traverse(2, 0.4, Some("^(food|health)$"))).await;
    let ids = reached(&scoped);
    assert!(ids.contains(&doctor) && !ids.contains(&private), "{scoped}");
    // Threshold 0 follows every edge; 1 follows none.
    let (_, all) = rest.get(&traverse(2, 0.0, None)).await;
    assert_eq!(reached(&all).len(), 5, "{all}");
    let (_, none) = rest.get(&traverse(2, 1.0, None)).await;
    assert_eq!(reached(&none), vec![start.clone()]);
}

async fn a_deleted_memory_never_comes_back_from_the_index(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let key = stack.key("alice").await;
    let rest = stack.rest(&key);
    let other_process = stack.rest_at(&stack.another_api().await, &key);
    for fact in FACTS {
        rest.add(fact, &[]).await;
    }
    let allergy =
        node_ids(&search(&rest, json!({ "query": "peanut allergy", "k": 1 })).await)[0].clone();
    // Both processes have loaded their index before the delete.
    assert_eq!(
        node_ids(&search(&other_process, json!({ "query": "peanut allergy", "k": 1 })).await),
        vec![allergy.clone()]
    );
    let (status, _) = rest
        .send(
            reqwest::Method::DELETE,
            &format!("/memories/bulk?memory_id={allergy}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for client in [&rest, &other_process] {
        for ranking in ["hybrid", "dense", "lexical"] {
            let answer = search(
                client,
                json!({ "query": "peanut allergy", "k": 10, "ranking": ranking }),
            )
            .await;
            assert!(!node_ids(&answer).contains(&allergy), "{ranking}: {answer}");
        }
        let all = search(client, json!({ "query": "", "full_scope": true, "k": 10 })).await;
        assert_eq!(node_ids(&all).len(), FACTS.len() - 1);
    }
    // Stored again, it is a new memory and is found again.
    let again = rest.add_id("The user is allergic to peanuts", &[]).await;
    assert_ne!(again, allergy);
    assert_eq!(
        node_ids(&search(&other_process, json!({ "query": "peanut allergy", "k": 1 })).await),
        vec![again]
    );
}

async fn another_process_and_a_restart_give_identical_results(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let key = stack.key("alice").await;
    let rest = stack.rest(&key);
    for fact in FACTS {
        rest.add(fact, &[]).await;
    }
    let queries = [
        "What pets does the user have?",
        "sport on weekends",
        "family in Germany",
    ];
    let mut before = Vec::new();
    for query in queries {
        before.push(search(&rest, json!({ "query": query, "k": 4 })).await["results"].clone());
    }
    // A fresh process loads its index from the database alone.
    let restarted = stack.rest_at(&stack.another_api().await, &key);
    for (query, expected) in queries.iter().zip(&before) {
        let after = search(&restarted, json!({ "query": query, "k": 4 })).await;
        assert_eq!(&after["results"], expected, "{query}");
    }
    // A change made through one process is seen by the other at its next search.
    rest.add("The user also owns a parrot called Rio", &[])
        .await;
    let seen = search(&restarted, json!({ "query": "parrot", "k": 1 })).await;
    assert_eq!(
        seen["results"][0]["content"],
        "The user also owns a parrot called Rio"
    );
}

async fn tenants_vectors_never_mix(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let alice = stack.rest(&stack.key("alice").await);
    let bob = stack.rest(&stack.key("bob").await);
    let alice_fact = alice.add_id("The user is allergic to peanuts", &[]).await;
    // Bob's near-identical fact is neither merged into nor linked to Alice's.
    let bob_fact = bob.add("The user has a peanut allergy", &[]).await;
    assert_eq!(bob_fact["action"], "created", "{bob_fact}");
    assert!(bob_fact["memory"]["links"].as_array().unwrap().is_empty());
    for ranking in ["hybrid", "dense", "lexical"] {
        let answer = search(
            &bob,
            json!({ "query": "peanut allergy", "k": 10, "ranking": ranking }),
        )
        .await;
        assert_eq!(
            node_ids(&answer),
            vec![bob_fact["memory_id"].as_str().unwrap().to_owned()],
            "{ranking}: {answer}"
        );
    }
    let answer = search(&alice, json!({ "query": "peanut allergy", "k": 10 })).await;
    assert_eq!(node_ids(&answer), vec![alice_fact]);
}

/// A stand-in for an OpenAI-compatible chat server: answers by the task its system prompt sets.
async fn stand_in_language_model() -> String {
    use axum::Json;
    use axum::routing::post;
    async fn chat(Json(request): Json<Value>) -> Json<Value> {
        let system = request["messages"][0]["content"]
            .as_str()
            .unwrap_or_default();
        let answer = if system.contains("JSON object") {
            r#"{"tags": ["Beverages", "daily-routine"], "context": "A note about the user's daily drink."}"#
        } else if system.contains("how they relate") {
            "the same drinking habit"
        } else if system.contains("Answer the question") {
            "The user drinks tea in the morning."
        } else {
            "?"
        };
        Json(json!({
            "id": "stand-in", "object": "chat.completion",
            "choices": [{ "index": 0, "finish_reason": "stop",
                          "message": { "role": "assistant", "content": answer } }]
        }))
    }
    let app = axum::Router::new().route("/v1/chat/completions", post(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn a_language_model_writes_tags_context_links_and_answers(backend: membrain_store::Backend) {
    let url = stand_in_language_model().await;
    let llm = membrain_llm::OpenAiChat::new(membrain_llm::Endpoint::new(&url).unwrap(), "stand-in")
        .unwrap();
    let stack = TestStack::spawn_full(backend, |_| {}, Some(Arc::new(llm))).await;
    let rest = stack.rest(&stack.key("alice").await);
    let first = rest
        .add("The user drinks green tea every morning", &[])
        .await;
    assert_eq!(
        first["memory"]["tags"],
        json!(["beverages", "daily-routine"])
    );
    assert_eq!(
        first["memory"]["context"],
        "A note about the user's daily drink."
    );
    // Caller tags win over the model's.
    let second = rest
        .add("Green tea helps the user stay calm at work", &["mine"])
        .await;
    assert_eq!(second["memory"]["tags"], json!(["mine"]), "{second}");
    let links = second["memory"]["links"].as_array().unwrap();
    assert_eq!(
        links[0]["description"], "the same drinking habit",
        "{second}"
    );
    let answer = search(
        &rest,
        json!({ "query": "What does the user drink?", "k": 2, "response_format": "both" }),
    )
    .await;
    assert_eq!(answer["interpreted"], "The user drinks tea in the morning.");
    assert!(answer["results"].as_array().unwrap().len() >= 2);
}

async fn vectors_of_another_model_are_remade_in_the_background(backend: membrain_store::Backend) {
    use membrain_memory::{Embedding, Limits, Memory, MemoryId, TenantId};
    use membrain_store::{ImportItem, MemoryStore};
    let stack = TestStack::spawn(backend).await;
    let rest = stack.rest(&stack.key("alice").await);
    // Memories whose vectors an older model made (as after a model upgrade, or an import).
    let tenant = TenantId::parse("alice").unwrap();
    let now = chrono::Utc::now();
    let items: Vec<ImportItem> = FACTS
        .iter()
        .map(|fact| ImportItem {
            memory: Memory {
                id: MemoryId::new(),
                content: (*fact).to_owned(),
                tags: vec![],
                category: "general".into(),
                context: String::new(),
                keywords: vec![],
                links: vec![],
                evolution_history: vec![],
                evolution_history_dropped: 0,
                observed_at: now,
                created_at: now,
                updated_at: now,
            },
            content_hash: membrain_memory::text::content_hash(fact),
            embedding: Some(Embedding::new("retired-model", vec![1.0; 384])),
        })
        .collect();
    let ids = stack
        .store
        .import_memories(&tenant, &items, &Limits::default())
        .await
        .unwrap();
    let allergy = ids[0].0.to_string();
    let model = membrain_embed::testing::shared_minilm();
    let model_id = membrain_embed::Embedder::model_id(model.as_ref()).to_owned();
    for _ in 0..200 {
        if stack
            .store
            .pending_embeddings(&model_id, 10)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        stack
            .store
            .pending_embeddings(&model_id, 10)
            .await
            .unwrap()
            .is_empty(),
        "the background embedder re-made every vector"
    );
    // Another process on the same database (here a second embedder) leaves the work to the one
    // holding the lease: the stack's embedder, which has just made every vector.
    let other = membrain_api::semantic::backfill::Backfill::new(
        stack.store.clone(),
        Arc::new(membrain_api::Semantic::new(model.clone(), None)),
        std::time::Duration::from_secs(1),
    );
    let newer: Vec<ImportItem> = ["The user keeps bees.", "The user sings in a choir."]
        .iter()
        .zip(&items)
        .map(|(fact, item)| ImportItem {
            memory: Memory {
                id: MemoryId::new(),
                content: (*fact).to_owned(),
                ..item.memory.clone()
            },
            content_hash: membrain_memory::text::content_hash(fact),
            embedding: item.embedding.clone(),
        })
        .collect();
    stack
        .store
        .import_memories(&tenant, &newer, &Limits::default())
        .await
        .unwrap();
    assert_eq!(other.round_if_holding().await.unwrap(), 0);
    let lease = membrain_api::semantic::backfill::LEASE;
    let ttl = std::time::Duration::from_secs(1);
    assert!(!stack.store.hold_lease(lease, "a-test", ttl).await.unwrap());
    let answer = search(
        &rest,
        json!({ "query": "Which foods could make them ill?", "k": 1, "ranking": "dense" }),
    )
    .await;
    assert_eq!(node_ids(&answer), vec![allergy], "{answer}");
}

/// An embedder whose service is down (what a remote embedder looks like when unreachable).
struct DownEmbedder;

impl membrain_embed::Embedder for DownEmbedder {
    fn model_id(&self) -> &str {
        "down"
    }
    fn dimensions(&self) -> usize {
        384
    }
    fn embed(&self, _: &[&str]) -> Result<Vec<Vec<f32>>, membrain_embed::EmbedError> {
        Err(membrain_embed::EmbedError::Inference(
            "the embedding service at http://127.0.0.1:9/v1/embeddings: unreachable".into(),
        ))
    }
}

async fn a_failing_embedder_degrades_to_lexical_and_says_so(backend: membrain_store::Backend) {
    let semantic = membrain_api::Semantic::new(Arc::new(DownEmbedder), None);
    let stack = TestStack::spawn_semantic(backend, |_| {}, semantic).await;
    let rest = stack.rest(&stack.key("alice").await);
    // Ingest still stores (without a vector, made later), so nothing acknowledged is lost.
    let stored = rest.add("The user is allergic to peanuts", &[]).await;
    assert_eq!(stored["action"], "created", "{stored}");
    let other = rest.add_id("The user drives a red Toyota", &[]).await;
    // Search answers lexically and says why.
    let answer = search(&rest, json!({ "query": "peanut allergy", "k": 3 })).await;
    assert_eq!(node_ids(&answer)[0], stored["memory_id"].as_str().unwrap());
    // The notice says what it means for the caller; where the embedder lives is the
    // operator's business (the log has it), never a tenant's.
    let notice = answer["notices"][0].as_str().unwrap();
    assert!(notice.contains("lexical"), "{notice}");
    assert!(!notice.contains("127.0.0.1:9"), "{notice}");
    // An agent is told too: the bridge passes the notice on.
    let agent = stack
        .mcp(&stack.key("alice").await, ProtocolVersion::V_2025_11_25)
        .await
        .expect("connect");
    let found = support::call_ok(
        &agent,
        "search_memories",
        json!({ "query": "peanut allergy", "k": 3 }),
    )
    .await;
    assert_eq!(found["notices"][0].as_str(), Some(notice), "{found}");
    // Traversal by meaning cannot work: a clear 503, not a 500.
    let (status, error) = rest
        .get(&format!(
            "/graph/traverse?start_memory_id={other}&query=cars&max_hops=1"
        ))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{error}");
    assert_eq!(error["error"]["code"], "embedder_unavailable");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("unavailable"), "{message}");
    assert!(!message.contains("127.0.0.1:9"), "{message}");
}
