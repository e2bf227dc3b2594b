//! How fast one tenant's index builds and answers, at 10,000 and 100,000 memories: random unit
//! vectors of 384 dimensions (all-MiniLM-L6-v2's size) and synthetic texts of 10 to 30 words
//! drawn from a skewed vocabulary, so common terms have long posting lists as in real text.
//!
//!   cargo bench -p membrain-index --bench index
//!
//! `RAYON_NUM_THREADS=1` shows the single-threaded scan. Prints figures; asserts nothing, and is
//! never run as a test.

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use membrain_index::{Document, Scored, TenantIndex};
use membrain_memory::MemoryId;

const DIMENSIONS: usize = 384;
const VOCABULARY: usize = 8000;
const QUERIES: usize = 200;
const K: usize = 10;

fn main() {
    println!(
        "membrain-index: {DIMENSIONS} dims, k = {K}, {QUERIES} queries, {} rayon threads",
        rayon::current_num_threads()
    );
    let vocabulary = vocabulary();
    for documents in [10_000, 100_000] {
        bench(documents, &vocabulary);
    }
}

fn bench(documents: usize, vocabulary: &[String]) {
    let mut random = Random(documents as u64);
    let corpus: Vec<Document> = (0..documents)
        .map(|i| Document {
            id: MemoryId::new(),
            text: random.text(vocabulary, 10..=30),
            tags: vec![format!("group{}", i % 4)],
            embedding: Some(random.unit_vector()),
            observed_at: i as i64,
        })
        .collect();

    println!("\n{documents} documents");
    let started = Instant::now();
    let mut index = TenantIndex::new(DIMENSIONS);
    for document in corpus.iter().cloned() {
        index.upsert(document);
    }
    let build = started.elapsed();
    println!(
        "  build                {:>8.1} ms total, {:.2} µs per upsert",
        ms(build),
        build.as_secs_f64() * 1e6 / documents as f64
    );

    let any = |_: &[String]| true;
    let quarter = |tags: &[String]| tags.iter().any(|t| t == "group0");
    let dense_queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| random.unit_vector()).collect();
    let lexical_queries: Vec<String> = (0..QUERIES)
        .map(|_| random.text(vocabulary, 5..=10))
        .collect();

    report(
        "dense (int8 + rescore)",
        &time(&dense_queries, |q| {
            index.dense(q, &any, K, -1.0);
        }),
    );
    report(
        "dense_exact (f32)",
        &time(&dense_queries, |q| {
            index.dense_exact(q, &any, K, -1.0);
        }),
    );
    let identical = dense_queries
        .iter()
        .filter(|q| {
            ids(&index.dense(q, &any, K, -1.0)) == ids(&index.dense_exact(q, &any, K, -1.0))
        })
        .count();
    println!("  dense top-{K} identical to exact: {identical} of {QUERIES} queries");
    report(
        "dense, 1/4 filter",
        &time(&dense_queries, |q| {
            index.dense(q, &quarter, K, -1.0);
        }),
    );

    let mut hits = 0;
    let lexical = time(&lexical_queries, |q| {
        hits += index.lexical(q, &any, K).len();
    });
    report("lexical", &lexical);
    report(
        "lexical, 1/4 filter",
        &time(&lexical_queries, |q| {
            index.lexical(q, &quarter, K);
        }),
    );
    println!(
        "  lexical hits per query: {:.1}",
        hits as f64 / QUERIES as f64
    );

    // Churn: replace a thousand documents (remove + insert, reusing slots and rows).
    let started = Instant::now();
    for document in corpus.iter().take(1000).cloned() {
        index.remove(document.id);
        index.upsert(document);
    }
    println!(
        "  remove + upsert      {:>8.2} µs each",
        started.elapsed().as_secs_f64() * 1e6 / 1000.0
    );
    println!("  {index:?}");
}

fn ids(hits: &[Scored]) -> Vec<MemoryId> {
    hits.iter().map(|h| h.id).collect()
}

fn time<Q>(queries: &[Q], mut run: impl FnMut(&Q)) -> Vec<Duration> {
    // One untimed pass warms caches and rayon's threads.
    if let Some(first) = queries.first() {
        run(first);
    }
    let mut times: Vec<Duration> = queries
        .iter()
        .map(|q| {
            let started = Instant::now();
            run(q);
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(name: &str, sorted: &[Duration]) {
    let at = |p: f64| ms(sorted[((sorted.len() - 1) as f64 * p).round() as usize]);
    println!(
        "  {name:<22} p50 {:>7.3} ms   p99 {:>7.3} ms",
        at(0.5),
        at(0.99)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Made-up words of two to four syllables: alphanumeric, never stop words.
fn vocabulary() -> Vec<String> {
    const SYLLABLES: [&str; 20] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "po", "si", "ve", "du", "ga", "hi", "jo", "ku", "ly",
        "ma", "ni", "or", "pe", "qu",
    ];
    let mut random = Random(1);
    (0..VOCABULARY)
        .map(|i| {
            let mut word: String = (0..2 + random.below(3))
                .map(|_| SYLLABLES[random.below(SYLLABLES.len() as u64) as usize])
                .collect();
            word.push_str(&i.to_string());
            word
        })
        .collect()
}

/// SplitMix64: deterministic and dependency-free.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn unit_vector(&mut self) -> Vec<f32> {
        let v: Vec<f64> = (0..DIMENSIONS)
            .map(|_| {
                let (u, w) = (self.unit(), self.unit());
                (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * w).cos()
            })
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter().map(|x| (x / norm) as f32).collect()
    }

    /// Words drawn with probability roughly proportional to 1 / rank (Zipf-like).
    fn text(&mut self, vocabulary: &[String], words: RangeInclusive<u64>) -> String {
        let words = words.start() + self.below(words.end() - words.start() + 1);
        let ln_size = (vocabulary.len() as f64).ln();
        (0..words)
            .map(|_| {
                let rank = (self.unit() * ln_size).exp() as usize - 1;
                vocabulary[rank.min(vocabulary.len() - 1)].as_str()
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}
