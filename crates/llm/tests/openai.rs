//! Both clients against a stand-in OpenAI-compatible service on a random loopback port: answers,
//! normalisation, batching, keys, and the message of every kind of failure.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod stand_in;

use std::time::Duration;

use membrain_embed::Embedder;
use membrain_llm::{
    CallProblem, Endpoint, EndpointKey, LanguageModel, LlmError, MAX_EMBEDDING_BATCH, OpenAiChat,
    OpenAiEmbedder,
};
use stand_in::{FAKE_DIMENSIONS, StandIn, fake_vector};

/// Runs blocking embedder work off the async workers, as Membrain does.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

fn endpoint(stand_in: &StandIn) -> Endpoint {
    Endpoint::new(&stand_in.base_url).unwrap()
}

/// An embedder for `model` that skips the probe, so the first `embed` meets the error mode.
async fn embedder_without_probe(stand_in: &StandIn, model: &'static str) -> OpenAiEmbedder {
    let endpoint = endpoint(stand_in).with_timeout(Duration::from_secs(1));
    blocking(move || OpenAiEmbedder::connect(endpoint, model, Some(FAKE_DIMENSIONS)))
        .await
        .unwrap()
}

async fn embed_error(embedder: OpenAiEmbedder, texts: &'static [&'static str]) -> LlmError {
    blocking(move || embedder.embed_texts(texts))
        .await
        .expect_err("the call fails")
}

fn unit(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    vector.iter().map(|v| v / norm).collect()
}

fn assert_close(actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() < 1e-6, "{actual:?} vs {expected:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedder_probes_its_dimensions_and_returns_unit_vectors_in_input_order() {
    let stand_in = StandIn::start().await;
    let endpoint = endpoint(&stand_in);
    let embedder = blocking(move || OpenAiEmbedder::connect(endpoint, "fake-embed", None))
        .await
        .unwrap();
    assert_eq!(embedder.dimensions(), FAKE_DIMENSIONS);
    assert_eq!(embedder.model_id(), "openai:fake-embed@8");
    assert_eq!(
        embedder.url(),
        format!("{}/embeddings", stand_in.base_url).as_str()
    );
    let probe = stand_in.received();
    assert_eq!(probe.len(), 1, "one probe call");
    assert_eq!(probe[0].body["model"], "fake-embed");
    assert_eq!(probe[0].authorization, None, "no key, no header");

    let texts = [
        "coffee every morning",
        "tea at night",
        "coffee every morning",
    ];
    let (embedder, vectors) = blocking(move || {
        let vectors = embedder.embed(&texts).unwrap();
        (embedder, vectors)
    })
    .await;
    assert_eq!(vectors.len(), 3);
    for (vector, text) in vectors.iter().zip(texts) {
        let length = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((length - 1.0).abs() < 1e-5, "unit length, got {length}");
        // The stand-in answers in reverse order; the client sorts by index.
        assert_close(vector, &unit(&fake_vector(text, FAKE_DIMENSIONS)));
    }
    assert_eq!(vectors[0], vectors[2], "the same text, the same vector");
    assert_ne!(vectors[0], vectors[1]);

    let nothing = blocking(move || embedder.embed(&[]).unwrap()).await;
    assert!(nothing.is_empty());
    assert_eq!(stand_in.received().len(), 2, "no call for no texts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_texts_go_in_batches_of_at_most_64_and_keep_their_order() {
    let stand_in = StandIn::start().await;
    let embedder = embedder_without_probe(&stand_in, "fake-embed").await;
    let texts: Vec<String> = (0..150).map(|i| format!("memory number {i}")).collect();
    let expected: Vec<Vec<f32>> = texts
        .iter()
        .map(|text| unit(&fake_vector(text, FAKE_DIMENSIONS)))
        .collect();
    let vectors = blocking(move || {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        embedder.embed(&texts).unwrap()
    })
    .await;
    assert_eq!(vectors.len(), 150);
    for (vector, expected) in vectors.iter().zip(&expected) {
        assert_close(vector, expected);
    }
    let batches: Vec<usize> = stand_in
        .received()
        .iter()
        .map(|call| call.body["input"].as_array().unwrap().len())
        .collect();
    assert_eq!(batches, [MAX_EMBEDDING_BATCH, MAX_EMBEDDING_BATCH, 22]);
    assert_eq!(
        stand_in.received()[2].body["input"][0],
        "memory number 128",
        "batches are consecutive slices"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_sent_as_a_bearer_token_and_a_wrong_key_is_explained() {
    let stand_in = StandIn::start().await;
    let with_key = endpoint(&stand_in).with_api_key(EndpointKey::new("sk-test"));
    let embedder = blocking(move || OpenAiEmbedder::connect(with_key, "keyed", None))
        .await
        .unwrap();
    assert_eq!(
        stand_in.received()[0].authorization.as_deref(),
        Some("Bearer sk-test")
    );
    assert!(
        !format!("{embedder:?}").contains("sk-test"),
        "Debug never shows the key"
    );

    let wrong_key = endpoint(&stand_in).with_api_key(EndpointKey::new("sk-wrong"));
    let error = blocking(move || OpenAiEmbedder::connect(wrong_key, "keyed", None))
        .await
        .expect_err("a wrong key fails at the probe");
    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "the embedding service at {}/embeddings: answered HTTP 401: Incorrect API key provided; check the API key",
            stand_in.base_url
        )
    );
    assert!(!message.contains("sk-wrong"), "{message}");

    let chat = OpenAiChat::new(
        endpoint(&stand_in).with_api_key(EndpointKey::new("sk-test")),
        "keyed",
    )
    .unwrap();
    assert_eq!(
        chat.complete("system", "hello").await.unwrap(),
        "canned answer to: hello"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_embedding_failure_names_the_url_and_what_went_wrong() {
    let stand_in = StandIn::start().await;
    let url = format!("{}/embeddings", stand_in.base_url);
    let cases: [(&'static str, &str); 5] = [
        ("fail-500", "answered HTTP 500: the GPU caught fire"),
        (
            "malformed",
            "answered with a body that is not an OpenAI-compatible answer (expected ident at line 1 column 2; the body begins \"this is not JSON\")",
        ),
        ("wrong-count", "returned 1 embeddings for 2 texts"),
        (
            "wrong-dims",
            "returned a vector of 4 dimensions where 8 were expected",
        ),
        ("zeros", "all zeros or not finite"),
    ];
    for (model, expected) in cases {
        let embedder = embedder_without_probe(&stand_in, model).await;
        let error = embed_error(embedder, &["first text", "second text"]).await;
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("the embedding service at {url}: ")),
            "{model}: {message}"
        );
        assert!(message.contains(expected), "{model}: {message}");
    }

    // Through the `Embedder` trait the same text arrives as an `EmbedError`.
    let embedder = embedder_without_probe(&stand_in, "fail-500").await;
    let error = blocking(move || embedder.embed(&["x"]))
        .await
        .expect_err("fails");
    assert_eq!(
        error.to_string(),
        format!(
            "embedding failed: the embedding service at {url}: answered HTTP 500: the GPU caught fire"
        )
    );

    // The probe fails the same way, at construction.
    let endpoint = endpoint(&stand_in);
    let error = blocking(move || OpenAiEmbedder::connect(endpoint, "malformed", None))
        .await
        .expect_err("the probe fails");
    assert!(
        matches!(error.problem(), Some(CallProblem::Malformed { .. })),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_absent_service_fails_in_time_with_a_hint() {
    let stand_in = StandIn::start().await;
    let embedder = embedder_without_probe(&stand_in, "slow").await;
    let started = std::time::Instant::now();
    let message = embed_error(embedder, &["x"]).await.to_string();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout cut it short"
    );
    assert!(message.contains("no answer within 1 s"), "{message}");

    // A port nothing listens on: bind one, then let it go.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let endpoint = Endpoint::new(&format!("http://{closed}/v1")).unwrap();
    let error = blocking(move || OpenAiEmbedder::connect(endpoint, "any", None))
        .await
        .expect_err("nothing listens");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "the embedding service at http://{closed}/v1/embeddings: cannot reach it ("
        )),
        "{message}"
    );
    assert!(
        message.ends_with("is the service running, and is the URL right?"),
        "{message}"
    );

    let chat = OpenAiChat::new(
        Endpoint::new(&format!("http://{closed}/v1")).unwrap(),
        "any",
    )
    .unwrap();
    let message = chat.complete("s", "u").await.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "the language model at http://{closed}/v1/chat/completions: cannot reach it"
        )),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_client_sends_a_deterministic_request_and_returns_the_answer() {
    let stand_in = StandIn::start().await;
    let chat = OpenAiChat::new(endpoint(&stand_in), "fake-chat").unwrap();
    assert_eq!(chat.model(), "fake-chat");
    let answer = chat
        .complete("Extract keywords.", "The user drinks coffee")
        .await
        .unwrap();
    assert_eq!(answer, "canned answer to: The user drinks coffee");
    let sent = &stand_in.received()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.body,
        serde_json::json!({
            "model": "fake-chat",
            "messages": [
                {"role": "system", "content": "Extract keywords."},
                {"role": "user", "content": "The user drinks coffee"}
            ],
            "temperature": 0.0
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chat_failure_names_the_url_and_what_went_wrong() {
    let stand_in = StandIn::start().await;
    let url = format!("{}/chat/completions", stand_in.base_url);
    let cases = [
        ("fail-500", "answered HTTP 500: the GPU caught fire"),
        (
            "malformed",
            "answered with a body that is not an OpenAI-compatible answer",
        ),
        (
            "empty",
            "answered without text in choices[0].message.content",
        ),
        (
            "keyed",
            "answered HTTP 401: Incorrect API key provided; check the API key",
        ),
        ("slow", "no answer within 1 s"),
    ];
    for (model, expected) in cases {
        let chat = OpenAiChat::new(
            endpoint(&stand_in).with_timeout(Duration::from_secs(1)),
            model,
        )
        .unwrap();
        let message = chat.complete("s", "u").await.unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("the language model at {url}: ")),
            "{model}: {message}"
        );
        assert!(message.contains(expected), "{model}: {message}");
    }
    stand_in.clear();
    assert!(stand_in.received().is_empty());
}
