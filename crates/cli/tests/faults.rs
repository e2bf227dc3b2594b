//! The fault harness: `membrain api` and `membrain mcp` as separate processes under concurrent
//! ingest and search, while the API is killed with SIGKILL, PostgreSQL is stopped and started,
//! and the SQLite file's filesystem fills up. What must hold: every acknowledged (202) write is
//! present afterwards; during an outage the answers are clear 503s (or refused connections while
//! no API process runs), never a 500 and never a hang; service comes back without a restart once
//! the database does.
//!
//! The test suite runs a short form; `scripts/faults` runs the long one (20 kill cycles, a 10 s
//! database outage) through the environment: `MEMBRAIN_FAULT_KILL_CYCLES`,
//! `MEMBRAIN_FAULT_OUTAGE_SECS`. Each test prints its counts (`--nocapture` shows them).
//!
//! Needs root, as CI and development machines here run: PostgreSQL runs as a private instance
//! (its own data directory and port, started as the `postgres` user, so stopping it touches no
//! other test) and the full disk is a small tmpfs mounted for the test.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{ServerProcess, membrain, membrain_output};

/// Longest a client waits for one answer before it counts a hang.
const HANG: Duration = Duration::from_secs(20);

/// One fault at a time: each test loads the machine, and a fault injected by one must not be
/// what another measures.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- what clients saw ------------------------------------------------------------------------

/// Every answer the load saw, and every write the API acknowledged.
#[derive(Default)]
struct Observed {
    /// HTTP status → count (REST and MCP).
    statuses: BTreeMap<u16, u64>,
    /// Connections refused or reset (no API process, or one being killed).
    refused: u64,
    /// Requests with no answer within [`HANG`].
    hangs: u64,
    /// MCP tool calls that came back as `isError` results (the API unreachable behind it).
    mcp_tool_errors: u64,
    /// (job id, content) of every 202.
    acknowledged: Vec<(String, String)>,
}

impl Observed {
    fn count(&mut self, status: StatusCode) {
        *self.statuses.entry(status.as_u16()).or_default() += 1;
    }

    fn server_errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(status, _)| **status >= 500 && **status != 503)
            .map(|(_, n)| n)
            .sum()
    }

    fn print(&self, name: &str) {
        println!(
            "[{name}] acknowledged writes: {}; statuses: {:?}; refused connections: {}; \
             hangs: {}; MCP isError results: {}",
            self.acknowledged.len(),
            self.statuses,
            self.refused,
            self.hangs,
            self.mcp_tool_errors
        );
    }
}

/// Distinct sentences (random words, not one template), so near-duplicate merging does not
/// fold acknowledged writes into each other.
fn sentence(seed: u64) -> String {
    const WORDS: [&str; 48] = [
        "harbour", "violin", "granite", "saffron", "glacier", "lantern", "orchard", "comet",
        "walnut", "tundra", "falcon", "meadow", "copper", "lagoon", "thistle", "quartz", "bakery",
        "canyon", "ember", "fjord", "gazebo", "hazel", "iris", "jasper", "kelp", "lilac", "marble",
        "nectar", "opal", "pepper", "quill", "raven", "sable", "tulip", "umber", "velvet",
        "willow", "yarrow", "zephyr", "anchor", "bramble", "cobalt", "dune", "emerald", "fennel",
        "garnet", "heron", "indigo",
    ];
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        WORDS[(state % WORDS.len() as u64) as usize]
    };
    format!(
        "Note {seed}: the {} near the {} keeps a {} and a {} beside the {}",
        next(),
        next(),
        next(),
        next(),
        next()
    )
}

// ---- load ------------------------------------------------------------------------------------

/// Writers and searchers against the API (and searches through the MCP bridge) until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    observed: Arc<Mutex<Observed>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(api: &str, mcp: Option<&str>, key: &str, writers: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let observed = Arc::new(Mutex::new(Observed::default()));
        let http = reqwest::Client::builder().timeout(HANG).build().unwrap();
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let (stop, observed, http) = (stop.clone(), observed.clone(), http.clone());
            let (api, key) = (api.to_owned(), key.to_owned());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let content = sentence(writer * 1_000_000 + n);
                    let sent = http
                        .post(format!("{api}/memories"))
                        .header("x-api-key", &key)
                        .json(&json!({ "content": content }))
                        .send()
                        .await;
                    let acknowledged = match sent {
                        Ok(response) if response.status() == StatusCode::ACCEPTED => {
                            let body: Option<Value> = response.json().await.ok();
                            body.and_then(|b| b["job_id"].as_str().map(str::to_owned))
                        }
                        other => {
                            record(&observed, other);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            None
                        }
                    };
                    if let Some(job) = acknowledged {
                        let mut seen = observed.lock().unwrap();
                        seen.count(StatusCode::ACCEPTED);
                        seen.acknowledged.push((job, content));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        {
            let (stop, observed, http) = (stop.clone(), observed.clone(), http.clone());
            let (api, key) = (api.to_owned(), key.to_owned());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sent = http
                        .post(format!("{api}/memories/search"))
                        .header("x-api-key", &key)
                        .json(&json!({ "query": "what is near the harbour?", "k": 5 }))
                        .send()
                        .await;
                    record(&observed, sent);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }));
        }
        if let Some(mcp) = mcp {
            let (stop, observed, http) = (stop.clone(), observed.clone(), http.clone());
            let (mcp, key) = (mcp.to_owned(), key.to_owned());
            tasks.push(tokio::spawn(async move {
                let mut id = 0;
                while !stop.load(Ordering::Relaxed) {
                    id += 1;
                    let sent = http
                        .post(&mcp)
                        .header("x-api-key", &key)
                        .header("accept", "application/json, text/event-stream")
                        .header("mcp-protocol-version", "2025-11-25")
                        .json(&json!({
                            "jsonrpc": "2.0", "id": id, "method": "tools/call",
                            "params": { "name": "search_memories",
                                        "arguments": { "query": "garnet", "k": 3 } },
                        }))
                        .send()
                        .await;
                    match sent {
                        Ok(response) => {
                            let status = response.status();
                            let body = response.text().await.unwrap_or_default();
                            let mut seen = observed.lock().unwrap();
                            seen.count(status);
                            if body.contains("\"isError\":true") {
                                seen.mcp_tool_errors += 1;
                            }
                        }
                        Err(error) => record(&observed, Err(error)),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }));
        }
        Self {
            stop,
            observed,
            tasks,
        }
    }

    async fn stop(self) -> Observed {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.observed)
            .ok()
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

fn record(observed: &Mutex<Observed>, sent: Result<reqwest::Response, reqwest::Error>) {
    let mut seen = observed.lock().unwrap();
    match sent {
        Ok(response) => seen.count(response.status()),
        Err(error) if error.is_timeout() => seen.hangs += 1,
        Err(_) => seen.refused += 1,
    }
}

// ---- processes -------------------------------------------------------------------------------

/// A free loopback port (bound and released), so a restarted API comes back where clients
/// expect it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_api(database_url: &str, port: u16) -> ServerProcess {
    let mut command = membrain();
    command.args([
        "--database-url",
        database_url,
        "--log-format",
        "json",
        "--log-level",
        "warn,membrain=info",
        "api",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--job-lease-secs",
        "2",
        // The harness is one tenant writing as fast as it can: its rate is not what is tested.
        "--tenant-requests-per-second",
        "10000",
        "--tenant-burst",
        "10000",
    ]);
    let mut process = ServerProcess::start(command);
    process.wait_for("Memory REST API listening").await;
    process.drain_output();
    process
}

async fn start_mcp(api_port: u16) -> (ServerProcess, String) {
    let mut command = membrain();
    command.args([
        "--log-format",
        "json",
        "mcp",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--api-base-url",
        &format!("http://127.0.0.1:{api_port}"),
    ]);
    let mut process = ServerProcess::start(command);
    let address = process.wait_for_address("MCP server listening").await;
    process.drain_output();
    (process, format!("http://{address}/mcp"))
}

async fn create_key(database_url: &str) -> String {
    let (ok, created, err) = membrain_output(
        &[
            "--database-url",
            database_url,
            "keys",
            "create",
            "--tenant",
            "faults",
            "--json",
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&created).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until every acknowledged job completed, and checks each memory it wrote exists with
/// the acknowledged content (or, for a merge, the memory it merged into exists). Returns the
/// number of distinct memories.
async fn verify_every_acknowledged_write(
    api: &str,
    key: &str,
    acknowledged: &[(String, String)],
) -> usize {
    let http = reqwest::Client::builder().timeout(HANG).build().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut memories = HashSet::new();
    for (job, content) in acknowledged {
        let result = loop {
            // Anything but a job (an API still starting, a 503) is shown if it never changes.
            let answer: Value = match http
                .get(format!("{api}/memories/jobs/{job}"))
                .header("x-api-key", key)
                .send()
                .await
            {
                Ok(response) if response.status() == StatusCode::OK => {
                    response.json().await.unwrap()
                }
                Ok(response) => json!({
                    "http": response.status().as_u16(),
                    "body": response.text().await.unwrap_or_default(),
                }),
                Err(error) => json!({ "error": error.to_string() }),
            };
            assert_ne!(
                answer["status"], "failed",
                "an acknowledged write failed: {answer}"
            );
            if answer["status"] == "completed" {
                break answer["result"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job} never completed: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let memory = &result["memory"];
        assert!(
            memory.is_object(),
            "the memory of job {job} is gone: {result}"
        );
        if result["action"] == "created" {
            assert_eq!(memory["content"], content.as_str(), "{result}");
        }
        memories.insert(result["memory_id"].as_str().unwrap().to_owned());
    }
    memories.len()
}

/// A PostgreSQL of this test's own (data directory, port), run as the `postgres` user, so it
/// can be stopped without touching the server other tests use.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
}

impl PrivatePostgres {
    async fn start() -> Self {
        assert!(
            nix_is_root(),
            "the fault harness runs as root (it starts its own PostgreSQL as the postgres user \
             and mounts a tmpfs), as CI and the development machines do"
        );
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .max()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        chown_to_postgres(dir.path());
        let data = dir.path().join("data");
        let initdb = as_postgres(&bin.join("initdb"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ])
            .output()
            .await
            .unwrap();
        assert!(initdb.status.success(), "initdb: {initdb:?}");
        let this = Self {
            dir,
            port: free_port(),
            bin,
        };
        this.resume().await;
        this
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("postgres.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        let output = as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()])
            .args(["-o", &options, "-w", "-t", "60"])
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "pg_ctl {args:?}: {output:?}");
    }

    async fn pause(&self) {
        self.pg_ctl(&["-m", "fast", "stop"]).await;
    }

    async fn resume(&self) {
        self.pg_ctl(&["start"]).await;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn chown_to_postgres(path: &Path) {
    let status = std::process::Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn as_postgres(program: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    command
}

// ---- the faults ------------------------------------------------------------------------------

/// SIGKILL of the API again and again under load; the MCP bridge stays up throughout.
async fn kill_cycles(database_url: &str, name: &str) {
    let cycles = env_number("MEMBRAIN_FAULT_KILL_CYCLES", 3);
    let key = create_key(database_url).await;
    let port = free_port();
    let api_base = format!("http://127.0.0.1:{port}/api/v1");
    let mut api = start_api(database_url, port).await;
    let (mcp, mcp_url) = start_mcp(port).await;
    let load = Load::start(&api_base, Some(&mcp_url), &key, 3);
    for cycle in 0..cycles {
        // Let the load reach the API (writes acknowledged, jobs mid-flight), then crash it.
        tokio::time::sleep(Duration::from_millis(700 + 300 * (cycle % 3))).await;
        api.crash().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        api = start_api(database_url, port).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let observed = load.stop().await;
    let memories = verify_every_acknowledged_write(&api_base, &key, &observed.acknowledged).await;
    observed.print(name);
    println!("[{name}] {cycles} kill cycles; {memories} memories hold every acknowledged write");
    assert!(!observed.acknowledged.is_empty());
    assert_eq!(observed.server_errors(), 0, "no 500 ever");
    assert_eq!(observed.hangs, 0, "no request hangs");
    assert!(api.terminate().await);
    assert!(mcp.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_cycles_lose_nothing_on_sqlite() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("membrain.db").display());
    kill_cycles(&url, "kill -9, SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_cycles_lose_nothing_on_postgres() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let postgres = PrivatePostgres::start().await;
    kill_cycles(&postgres.url(), "kill -9, PostgreSQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_is_503_and_heals_without_a_restart() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let name = "PostgreSQL stopped";
    let outage = Duration::from_secs(env_number("MEMBRAIN_FAULT_OUTAGE_SECS", 3));
    let postgres = PrivatePostgres::start().await;
    let url = postgres.url();
    let key = create_key(&url).await;
    let port = free_port();
    let api_base = format!("http://127.0.0.1:{port}/api/v1");
    let api = start_api(&url, port).await;
    let load = Load::start(&api_base, None, &key, 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    postgres.pause().await;
    // What a client sees while the database is down: a clear 503, quickly.
    tokio::time::sleep(outage / 2).await;
    let http = reqwest::Client::builder().timeout(HANG).build().unwrap();
    let during = http
        .post(format!("{api_base}/memories"))
        .header("x-api-key", &key)
        .json(&json!({ "content": "written while the database is down" }))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(during.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(during.headers().contains_key("retry-after"));
    let body: Value = during.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    tokio::time::sleep(outage - outage / 2).await;
    postgres.resume().await;
    // Back without restarting the API.
    let healed_at = tokio::time::Instant::now();
    let mut healed = false;
    while healed_at.elapsed() < Duration::from_secs(30) {
        let answer = http
            .get(format!("{api_base}/stats"))
            .header("x-api-key", &key)
            .send()
            .await;
        if answer.is_ok_and(|a| a.status() == StatusCode::OK) {
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healed, "the API answers again once the database is back");
    println!(
        "[{name}] outage {} s; answering again {} ms after the database started",
        outage.as_secs(),
        healed_at.elapsed().as_millis()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let observed = load.stop().await;
    let memories = verify_every_acknowledged_write(&api_base, &key, &observed.acknowledged).await;
    observed.print(name);
    println!("[{name}] {memories} memories hold every acknowledged write");
    assert_eq!(observed.server_errors(), 0, "no 500 ever");
    assert_eq!(observed.hangs, 0, "no request hangs");
    assert!(
        observed.statuses.get(&503).copied().unwrap_or(0) > 0,
        "the outage was seen"
    );
    assert!(api.terminate().await);
}

/// A tmpfs of its own, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        assert!(nix_is_root(), "mounting a tmpfs needs root");
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the filesystem is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_is_503_and_writes_resume_once_there_is_room() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let name = "disk full, SQLite";
    let disk = SmallDisk::mount(24);
    let url = format!("sqlite://{}", disk.path().join("membrain.db").display());
    let key = create_key(&url).await;
    let port = free_port();
    let api_base = format!("http://127.0.0.1:{port}/api/v1");
    let api = start_api(&url, port).await;
    let load = Load::start(&api_base, None, &key, 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let filler = disk.fill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let http = reqwest::Client::builder().timeout(HANG).build().unwrap();
    let during = http
        .post(format!("{api_base}/memories"))
        .header("x-api-key", &key)
        .json(&json!({ "content": "written while the disk is full" }))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(during.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = during.json().await.unwrap();
    assert_eq!(body["error"]["code"], "storage_full", "{body}");
    // Reads still work.
    let read = http
        .get(format!("{api_base}/stats"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    std::fs::remove_file(filler).unwrap();
    let room_at = tokio::time::Instant::now();
    let mut resumed = false;
    while room_at.elapsed() < Duration::from_secs(30) {
        let answer = http
            .post(format!("{api_base}/memories"))
            .header("x-api-key", &key)
            .json(&json!({ "content": "written once there is room again" }))
            .send()
            .await
            .unwrap();
        if answer.status() == StatusCode::ACCEPTED {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(resumed, "writes resume without a restart");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let observed = load.stop().await;
    let memories = verify_every_acknowledged_write(&api_base, &key, &observed.acknowledged).await;
    observed.print(name);
    println!(
        "[{name}] writes accepted again {} ms after room was made; {memories} memories hold \
         every acknowledged write",
        room_at.elapsed().as_millis()
    );
    assert_eq!(observed.server_errors(), 0, "no 500 ever");
    assert_eq!(observed.hangs, 0, "no request hangs");
    assert!(api.terminate().await);
}
