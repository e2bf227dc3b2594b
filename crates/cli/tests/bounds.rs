//! One tenant cannot hurt another: every bound a hostile caller meets, over the real REST API
//! and MCP bridge — filters, histories, answer sizes, quotas, rates, poisoned texts, job
//! results of deleted memories, and single-user keys that would remap another tenant's.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use std::sync::Arc;
use std::time::Duration;

use membrain_api::Semantic;
use membrain_embed::{EmbedError, Embedder};
use membrain_store::MemoryStore;
use reqwest::StatusCode;
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};
use support::{TestStack, call_err, membrain_output};

on_both_backends!(
    search_filters_are_bounded_in_count_and_bytes,
    histories_stay_bounded_and_answers_count_every_byte,
    a_job_names_its_memory_and_forgets_a_deleted_one,
    quotas_answer_429_naming_the_limit,
    a_text_the_embedder_refuses_costs_only_its_own_vector,
);

fn many(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

async fn search_filters_are_bounded_in_count_and_bytes(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let key = stack.key("alice").await;
    let rest = stack.rest(&key);
    rest.add("The user likes green tea", &["drinks"]).await;
    let cases = [
        (
            json!({ "query": "tea", "keyword_filter": many("^t", 17) }),
            "at most 16",
        ),
        (
            json!({ "query": "tea", "scope": many("tag-", 5_000) }),
            "at most 16",
        ),
        (
            json!({ "query": "tea", "keyword_filter": vec!["x".repeat(500); 9] }),
            "bytes together",
        ),
    ];
    for (body, expected) in cases {
        let (status, error) = rest.post("/memories/search", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    // Within the limits the filter works as before.
    let (status, answer) = rest
        .post(
            "/memories/search",
            json!({ "query": "tea", "keyword_filter": many("^dr", 16) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The public tool answers the same bound as an isError result that says how to fix it.
    let mcp = stack
        .mcp(&key, ProtocolVersion::V_2025_11_25)
        .await
        .unwrap();
    let text = call_err(
        &mcp,
        "search_memories",
        json!({ "query": "tea", "keyword_filter": many("^t", 17) }),
    )
    .await;
    assert!(text.contains("at most 16"), "{text}");
}

async fn histories_stay_bounded_and_answers_count_every_byte(backend: membrain_store::Backend) {
    let stack = TestStack::spawn_with(backend, |settings| {
        settings.limits.max_result_bytes = 40_000;
    })
    .await;
    let key = stack.key("alice").await;
    let rest = stack.rest(&key);
    let mut ids = Vec::new();
    for fact in ["apples", "pears", "plums", "cherries"] {
        ids.push(rest.add_id(&format!("The user grows {fact}"), &[]).await);
    }
    // Fifteen rewrites of a memory keep ten old wordings in full and count five.
    for round in 0..15 {
        let text = format!(
            "The user grows apples, round {round}: {}",
            "x".repeat(2_000)
        );
        let (status, updated) = rest
            .put(&format!("/memories/{}", ids[0]), json!({ "content": text }))
            .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
    }
    let (_, memory) = rest.get(&format!("/memories/{}", ids[0])).await;
    assert_eq!(memory["evolution_history"].as_array().unwrap().len(), 10);
    assert_eq!(memory["evolution_history_dropped"], 5);
    // An answer stays within the byte cap however big the histories are, and says it was cut.
    for other in &ids[1..] {
        for round in 0..4 {
            let text = format!("The user grows fruit {other} {round} {}", "y".repeat(2_000));
            rest.put(&format!("/memories/{other}"), json!({ "content": text }))
                .await;
        }
    }
    let response = reqwest::Client::new()
        .post(format!("{}/memories/search", rest.base))
        .header("x-api-key", &key)
        .json(&json!({ "query": "user grows", "k": 100 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    // Each result (a memory with ten old wordings and its related memories) is well under the
    // cap, all of them together are not: the answer stops at the cap.
    assert!(text.len() <= 40_000 + 200, "{} bytes", text.len());
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["truncated"], true, "{answer}");
    assert!(answer["count"].as_u64().unwrap() >= 1);
}

async fn a_job_names_its_memory_and_forgets_a_deleted_one(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let rest = stack.rest(&stack.key("alice").await);
    let (_, accepted) = rest
        .post("/memories", json!({ "content": "The vault code is 4711" }))
        .await;
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();
    let job = rest.wait_for_job(&job_id).await;
    let memory_id = job["result"]["memory_id"].as_str().unwrap().to_owned();
    assert_eq!(job["result"]["memory"]["content"], "The vault code is 4711");
    let (status, _) = rest
        .delete(&format!("/memories/bulk?memory_id={memory_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, job) = rest.get(&format!("/memories/jobs/{job_id}")).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["result"]["memory_id"], memory_id.as_str());
    assert_eq!(job["result"]["memory"], Value::Null, "{job}");
    assert!(!job.to_string().contains("4711"), "{job}");
}

async fn quotas_answer_429_naming_the_limit(backend: membrain_store::Backend) {
    let stack = TestStack::spawn_with(backend, |settings| {
        settings.limits.max_memories_per_tenant = 2;
    })
    .await;
    let alice = stack.rest(&stack.key("alice").await);
    // Unrelated facts, so no near-duplicate merges two of them into one memory.
    alice.add("Alice keeps bees on the roof", &[]).await;
    alice
        .add("The quarterly tax return is due in April", &[])
        .await;
    let (status, error) = alice
        .post(
            "/memories",
            json!({ "content": "Jupiter has dozens of moons" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{error}");
    assert_eq!(error["error"]["code"], "quota_exceeded");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("quota is 2") && message.contains("delete"),
        "{message}"
    );
    // Another tenant has its own quota.
    let bob = stack.rest(&stack.key("bob").await);
    bob.add("First fact of bob", &[]).await;
    // Deleting makes room again.
    let (status, _) = alice.delete("/memories/bulk?category=general").await;
    assert_eq!(status, StatusCode::OK);
    alice.add("Jupiter has dozens of moons", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_rate_gets_429_with_retry_after() {
    let stack = TestStack::spawn_with(membrain_store::Backend::Sqlite, |settings| {
        settings.tenant_limits.requests_per_second = 0.5;
        settings.tenant_limits.burst = 3;
    })
    .await;
    let http = reqwest::Client::new();
    let alice = stack.key("alice").await;
    let stats = |key: &str| {
        http.get(format!("{}/api/v1/stats", stack.api_url))
            .header("x-api-key", key.to_owned())
            .send()
    };
    for _ in 0..3 {
        assert_eq!(stats(&alice).await.unwrap().status(), StatusCode::OK);
    }
    let refused = stats(&alice).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Bob's bucket is his own.
    let bob = stack.key("bob").await;
    assert_eq!(stats(&bob).await.unwrap().status(), StatusCode::OK);
}

/// An embedder that refuses any text with "poison" in it, as a remote service answers 400 to
/// an input it will never embed, and embeds everything else like a tiny model.
struct PickyEmbedder;

impl Embedder for PickyEmbedder {
    fn model_id(&self) -> &str {
        "picky"
    }
    fn dimensions(&self) -> usize {
        3
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.iter().any(|t| t.contains("poison")) {
            return Err(EmbedError::Refused("HTTP 400: invalid input".into()));
        }
        Ok(texts
            .iter()
            .map(|t| {
                let n = t.len() as f32;
                let v = [1.0, n.sin(), n.cos()];
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

async fn a_text_the_embedder_refuses_costs_only_its_own_vector(backend: membrain_store::Backend) {
    let semantic = Semantic::new(Arc::new(PickyEmbedder), None);
    let stack = TestStack::spawn_semantic(backend, |_| {}, semantic).await;
    let rest = stack.rest(&stack.key("alice").await);
    // Queued together, so the worker embeds them in one batch.
    let mut jobs = Vec::new();
    for content in [
        "A harmless fact about tea",
        "A poison pill the embedder refuses",
        "Another harmless fact about coffee",
    ] {
        let (status, accepted) = rest.post("/memories", json!({ "content": content })).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        jobs.push(accepted["job_id"].as_str().unwrap().to_owned());
    }
    for job in &jobs {
        rest.wait_for_job(job).await;
    }
    // The background embedder sets the refused text aside instead of retrying it forever, so
    // nothing stays pending.
    let mut pending = usize::MAX;
    for _ in 0..200 {
        pending = stack
            .store
            .pending_embeddings("picky", 10)
            .await
            .unwrap()
            .len();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending, 0, "the background embedder is not stalled");
    let tenant = membrain_memory::TenantId::parse("alice").unwrap();
    let feed = stack
        .store
        .index_changes(&tenant, -1, "picky")
        .await
        .unwrap();
    let with_vectors: Vec<&str> = feed
        .upserts
        .iter()
        .filter(|entry| entry.embedding.is_some())
        .map(|entry| entry.content.as_str())
        .collect();
    assert_eq!(with_vectors.len(), 2, "{with_vectors:?}");
    assert!(with_vectors.iter().all(|c| !c.contains("poison")));
}

#[tokio::test]
async fn a_single_user_key_of_another_tenant_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (ok, created, err) = membrain_output(
        &[
            "--data-dir",
            data,
            "keys",
            "create",
            "--tenant",
            "bob",
            "--json",
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&created).unwrap();
    let bobs_key = created["key"].as_str().unwrap();
    let (ok, _, err) = membrain_output(
        &[
            "--data-dir",
            data,
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-model-fetch",
        ],
        &[("MEMBRAIN_API_KEY", bobs_key)],
    )
    .await;
    assert!(!ok, "the API must not start");
    assert!(
        err.contains("\"bob\"") && err.contains("MEMBRAIN_API_KEY"),
        "{err}"
    );
    assert!(
        !err.contains(bobs_key),
        "the key itself is never printed: {err}"
    );
    // Revoked, it is refused as well: `keys revoke` always wins.
    let id = created["id"].as_str().unwrap();
    let (ok, _, _) = membrain_output(&["--data-dir", data, "keys", "revoke", id], &[]).await;
    assert!(ok);
    let (ok, _, err) = membrain_output(
        &[
            "--data-dir",
            data,
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-model-fetch",
        ],
        &[("MEMBRAIN_API_KEY", bobs_key)],
    )
    .await;
    assert!(!ok && err.contains("revoked"), "{err}");
}
