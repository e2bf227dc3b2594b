//! Bridge benchmark: `get_stats` and `get_memories` directly on the REST API and through MCP,
//! both ways the bridge reaches the API: over HTTP (`mcp-http`, as `membrain mcp` runs) and in
//! process (`serve`, as `membrain serve` runs it: the API's router called without a socket). At
//! 1, 8 and 32 concurrent clients it prints calls/s, p50 and p99, the MCP overhead, and each MCP
//! path's throughput against the direct call's (target for `serve`: ≥ 0.9× at 32 clients, p50
//! overhead ≤ 0.1 ms at 1).
//!
//! Run: `cargo bench -p membrain --bench bridge` (release build). Environment:
//! `BENCH_SECS` (seconds per cell, default 5), `BENCH_CLIENTS` (default "1,8,32"),
//! `BENCH_DATABASE_URL` (default: a SQLite file in a temporary directory), `BENCH_CALLS`
//! (default "get_stats,get_memories") and `BENCH_PATHS` (default "direct,mcp-http,serve"),
//! `MEMBRAIN_TEST_MODEL_WHEEL` (the embedding model's wheel, as for the tests).
//!
//! The servers run in this process on their own runtime; the load generator on another. Each
//! MCP call is a stateless `tools/call` POST, as a load-balanced client sends it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use membrain_api::{ApiServer, ApiSettings, DatabaseKeys};
use membrain_auth::{ApiKey, CachedKeys};
use membrain_mcp::{McpBackend, McpServer, McpSettings};
use membrain_memory::TenantId;
use membrain_store::{MemoryStore, SqlStore, StoreOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The same allocator as the `membrain` binary, so the figures match what it serves.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Endpoints {
    api: String,
    /// The bridge calling the API over HTTP.
    mcp: String,
    /// The bridge calling the API's router in process.
    serve: String,
    key: String,
    memory_ids: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Direct,
    Mcp,
    Serve,
}

impl Path {
    fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Mcp => "mcp-http",
            Self::Serve => "serve",
        }
    }
}

#[derive(Clone, Copy)]
enum Call {
    Stats,
    Memories,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Self::Stats => "get_stats",
            Self::Memories => "get_memories",
        }
    }
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let clients: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_else(|_| "1,8,32".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    // Narrowing a run (e.g. to profile one path): `BENCH_CALLS=get_stats BENCH_PATHS=serve`.
    let listed = |name: &str, default: &str| -> Vec<String> {
        std::env::var(name)
            .unwrap_or_else(|_| default.to_owned())
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect()
    };
    let calls: Vec<Call> = [Call::Stats, Call::Memories]
        .into_iter()
        .filter(|c| listed("BENCH_CALLS", "get_stats,get_memories").contains(&c.name().to_owned()))
        .collect();
    let paths: Vec<Path> = [Path::Direct, Path::Mcp, Path::Serve]
        .into_iter()
        .filter(|p| listed("BENCH_PATHS", "direct,mcp-http,serve").contains(&p.label().to_owned()))
        .collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));

    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let shutdown = CancellationToken::new();
    let endpoints = server_runtime.block_on(start(&database_url, shutdown.clone()));

    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("load runtime");
    let endpoints = Arc::new(endpoints);
    println!(
        "Membrain bridge benchmark: {seconds} s per cell, database {}",
        database_url.split('?').next().unwrap_or("")
    );
    println!(
        "{:<14} {:<8} {:>7} {:>10} {:>9} {:>9} {:>12}",
        "call", "path", "clients", "calls/s", "p50 ms", "p99 ms", "cpu us/call"
    );
    let mut rows = Vec::new();
    for &call in &calls {
        for &n in &clients {
            for &path in &paths {
                let cpu_before = process_cpu_seconds();
                let (rate, p50, p99) =
                    load.block_on(measure(endpoints.clone(), call, path, n, seconds));
                // CPU of the whole process (servers and load generator) per call: steadier than
                // calls/s on a shared machine, where other tenants take cores away.
                let cpu_per_call = match (cpu_before, process_cpu_seconds()) {
                    (Some(before), Some(after)) if rate > 0.0 => {
                        format!("{:.0}", (after - before) * 1e6 / (rate * (seconds + 0.5)))
                    }
                    _ => "n/a".to_owned(),
                };
                println!(
                    "{:<14} {:<8} {:>7} {:>10.0} {:>9.3} {:>9.3} {:>12}",
                    call.name(),
                    path.label(),
                    n,
                    rate,
                    p50,
                    p99,
                    cpu_per_call
                );
                rows.push((call.name(), n, path, rate, p50));
            }
        }
    }
    println!();
    println!("MCP overhead (p50 through MCP minus p50 direct; throughput through MCP / direct):");
    for &call in &calls {
        for &n in &clients {
            let row = |path| {
                rows.iter()
                    .find(|r| r.0 == call.name() && r.1 == n && r.2 == path)
                    .map_or((0.0, 0.0), |r| (r.3, r.4))
            };
            let (direct_rate, direct_p50) = row(Path::Direct);
            let [(http_rate, http_p50), (serve_rate, serve_p50)] =
                [row(Path::Mcp), row(Path::Serve)];
            println!(
                "  {:<14} {:>3} clients: mcp-http {:+.3} ms, {:.2}×; serve {:+.3} ms, {:.2}×",
                call.name(),
                n,
                http_p50 - direct_p50,
                http_rate / direct_rate.max(f64::MIN_POSITIVE),
                serve_p50 - direct_p50,
                serve_rate / direct_rate.max(f64::MIN_POSITIVE),
            );
        }
    }
    shutdown.cancel();
}

/// User plus system CPU time of this process, from /proc (Linux); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports these in clock ticks of 1/100 s on every common configuration.
    Some((utime + stime) / 100.0)
}

async fn start(database_url: &str, shutdown: CancellationToken) -> Endpoints {
    let store = Arc::new(
        SqlStore::connect(database_url, &StoreOptions::default())
            .await
            .expect("open the database"),
    );
    let key = ApiKey::generate();
    store
        .create_key(
            &TenantId::parse("bench").expect("tenant"),
            &key.hash(),
            "bench",
        )
        .await
        .expect("a key");
    // The bridge's cost is measured, not the per-tenant rate bound: one tenant calls as fast as
    // its clients can (up to 32 at once, the default requests in flight).
    let settings = ApiSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        tenant_limits: membrain_api::fair::TenantLimits {
            requests_per_second: 1e6,
            burst: 1_000_000,
            ..Default::default()
        },
        ..ApiSettings::default()
    };
    let keys = Arc::new(CachedKeys::new(
        Arc::new(DatabaseKeys::new(store.clone())),
        settings.key_cache_ttl,
    ));
    // The bridge calls measured here never embed; the real model keeps the wiring as served.
    let semantic = membrain_api::Semantic::new(membrain_embed::testing::shared_minilm(), None);
    let api = ApiServer::bind(&settings, store.clone(), keys, semantic)
        .await
        .expect("bind the API");
    let api_url = format!("http://{}", api.local_addr().expect("address"));
    let mcp_settings = McpSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        api_base_url: api_url.clone(),
        ..McpSettings::default()
    };
    let mcp = McpServer::bind(mcp_settings.clone())
        .await
        .expect("bind MCP");
    let serve = McpServer::bind_with(mcp_settings, McpBackend::InProcess(api.router()))
        .await
        .expect("bind the in-process bridge");
    let mcp_url = format!("http://{}/mcp", mcp.local_addr().expect("address"));
    let serve_url = format!("http://{}/mcp", serve.local_addr().expect("address"));
    tokio::spawn(api.run_until_stopped(shutdown.clone()));
    tokio::spawn(mcp.run_until_stopped(shutdown.clone()));
    tokio::spawn(serve.run_until_stopped(shutdown));

    // 100 memories, so stats and batch reads do real work.
    let http = reqwest::Client::new();
    let mut jobs = Vec::new();
    for i in 0..100 {
        let accepted: Value = http
            .post(format!("{api_url}/api/v1/memories"))
            .header("x-api-key", key.expose_secret())
            .json(&json!({"content": format!("Benchmark fact {i} about topic {}", i % 7), "tags": [format!("t{}", i % 5)]}))
            .send()
            .await
            .expect("ingest")
            .json()
            .await
            .expect("ingest answer");
        jobs.push(accepted["job_id"].as_str().expect("job id").to_owned());
    }
    let mut memory_ids = Vec::new();
    // Every job waited for, so no ingest runs during the measurements. Similar facts merge
    // as near-duplicates with the real model, so there are fewer memories than jobs: the batch
    // reads take the first five distinct ones.
    for job in &jobs {
        loop {
            let answer: Value = http
                .get(format!("{api_url}/api/v1/memories/jobs/{job}"))
                .header("x-api-key", key.expose_secret())
                .send()
                .await
                .expect("job")
                .json()
                .await
                .expect("job answer");
            match answer["status"].as_str() {
                Some("completed") => {
                    let id = answer["result"]["memory_id"].as_str().expect("id");
                    if memory_ids.len() < 5 && !memory_ids.iter().any(|known| known == id) {
                        memory_ids.push(id.to_owned());
                    }
                    break;
                }
                Some("failed") => panic!("an ingest job failed: {answer}"),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
    Endpoints {
        api: format!("{api_url}/api/v1"),
        mcp: mcp_url,
        serve: serve_url,
        key: key.expose_secret().to_owned(),
        memory_ids,
    }
}

async fn one_call(http: &reqwest::Client, endpoints: &Endpoints, call: Call, path: Path, id: u64) {
    let response = match (path, call) {
        (Path::Direct, Call::Stats) => {
            http.get(format!("{}/stats", endpoints.api))
                .header("x-api-key", &endpoints.key)
                .send()
                .await
        }
        (Path::Direct, Call::Memories) => {
            http.post(format!("{}/memories/batch", endpoints.api))
                .header("x-api-key", &endpoints.key)
                .json(&json!({"memory_ids": endpoints.memory_ids}))
                .send()
                .await
        }
        (Path::Mcp | Path::Serve, call) => {
            let arguments = match call {
                Call::Stats => json!({}),
                Call::Memories => json!({"memory_ids": endpoints.memory_ids}),
            };
            let url = if path == Path::Mcp {
                &endpoints.mcp
            } else {
                &endpoints.serve
            };
            http.post(url)
                .header("x-api-key", &endpoints.key)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .json(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": call.name(), "arguments": arguments}}))
                .send()
                .await
        }
    };
    let response = response.expect("a response");
    assert!(response.status().is_success(), "HTTP {}", response.status());
    let body = response.bytes().await.expect("a body");
    if path != Path::Direct {
        assert!(
            !body.windows(13).any(|w| w == b"\"isError\":true"),
            "tool failed: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// Runs `clients` loops for `seconds` (after a short warm-up); returns calls/s, p50 and p99 in ms.
async fn measure(
    endpoints: Arc<Endpoints>,
    call: Call,
    path: Path,
    clients: usize,
    seconds: f64,
) -> (f64, f64, f64) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let warmup = Instant::now() + Duration::from_millis(500);
    while Instant::now() < warmup {
        one_call(&http, &endpoints, call, path, 0).await;
    }
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (http, endpoints) = (http.clone(), endpoints.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut id = client as u64 * 1_000_000;
            while Instant::now() < end {
                let started = Instant::now();
                one_call(&http, &endpoints, call, path, id).await;
                latencies.push(started.elapsed());
                id += 1;
            }
            latencies
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a client task"));
    }
    all.sort();
    let pick = |q: f64| {
        all.get(((all.len() as f64 - 1.0) * q).round() as usize)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    (all.len() as f64 / seconds, pick(0.5), pick(0.99))
}
