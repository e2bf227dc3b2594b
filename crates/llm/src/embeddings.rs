//! `OpenAiEmbedder`: `membrain_embed::Embedder` over an OpenAI-compatible `POST /embeddings`.

use std::time::Duration;

use membrain_embed::{EmbedError, Embedder};
use serde::{Deserialize, Serialize};

use crate::endpoint::{Endpoint, connect_timeout};
use crate::error::{CallProblem, LlmError, Service, malformed, status_message, transport_problem};

/// Most texts sent in one call. OpenAI accepts 2048, but smaller services (and their request-size
/// limits) are happier with fewer, and 64 short memories are well under any token limit.
pub const MAX_EMBEDDING_BATCH: usize = 64;

/// How long one embeddings call may take unless the endpoint says otherwise.
pub const DEFAULT_EMBEDDING_TIMEOUT: Duration = Duration::from_secs(30);

/// The text embedded once at construction to learn the vectors' length.
const PROBE_TEXT: &str = "Membrain asks for one vector to learn its length.";

/// Embeddings from an OpenAI-compatible service, L2-normalised so cosine similarity is a dot
/// product, as with the local model.
///
/// Blocking, like every `Embedder`: construct it, call it and drop it off async worker threads
/// (in `spawn_blocking`).
#[derive(Debug)]
pub struct OpenAiEmbedder {
    http: reqwest::blocking::Client,
    endpoint: Endpoint,
    /// `{base}/embeddings`.
    url: String,
    model: String,
    dimensions: usize,
    model_id: String,
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [&'a str],
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    /// Which input this vector belongs to; answers need not be in input order.
    index: Option<usize>,
}

impl OpenAiEmbedder {
    /// Sets up the client for `model` at `endpoint`. With `dimensions` given, nothing is called
    /// yet; without, one text is embedded to learn the vectors' length, so a wrong URL, key or
    /// model fails here rather than at the first memory.
    pub fn connect(
        endpoint: Endpoint,
        model: &str,
        dimensions: Option<usize>,
    ) -> Result<Self, LlmError> {
        let timeout = endpoint.timeout_or(DEFAULT_EMBEDDING_TIMEOUT);
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout(timeout))
            .build()
            .map_err(|error| LlmError::Client {
                detail: crate::error::transport_detail(&error),
            })?;
        let url = endpoint.operation_url("embeddings");
        let mut embedder = Self {
            http,
            endpoint,
            url,
            model: model.to_owned(),
            dimensions: dimensions.unwrap_or(0),
            model_id: String::new(),
        };
        if dimensions.is_none() {
            let probe = embedder.call(&[PROBE_TEXT])?;
            embedder.dimensions = probe.first().map_or(0, Vec::len);
        }
        if embedder.dimensions == 0 {
            return Err(embedder.failure(CallProblem::Malformed {
                detail: "its vectors are empty".into(),
            }));
        }
        embedder.model_id = format!("openai:{}@{}", embedder.model, embedder.dimensions);
        Ok(embedder)
    }

    /// The model name sent with every call.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The URL every call goes to, `{base}/embeddings`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Embeds every text, calling the service once per batch of at most `MAX_EMBEDDING_BATCH`.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, LlmError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(MAX_EMBEDDING_BATCH) {
            for vector in self.call(batch)? {
                if vector.len() != self.dimensions {
                    return Err(self.failure(CallProblem::WrongDimensions {
                        expected: self.dimensions,
                        got: vector.len(),
                    }));
                }
                vectors.push(vector);
            }
        }
        Ok(vectors)
    }

    /// One call: the batch's vectors in input order, each of unit length.
    fn call(&self, batch: &[&str]) -> Result<Vec<Vec<f32>>, LlmError> {
        let timeout = self.endpoint.timeout_or(DEFAULT_EMBEDDING_TIMEOUT);
        let mut request = self.http.post(&self.url).json(&EmbeddingsRequest {
            model: &self.model,
            input: batch,
        });
        if let Some(key) = self.endpoint.api_key() {
            // `bearer_auth` marks the header sensitive, so it is left out of reqwest's own logs.
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request
            .send()
            .map_err(|error| self.failure(transport_problem(&error, timeout)))?;
        let status = response.status();
        let body = response
            .bytes()
            .map_err(|error| self.failure(transport_problem(&error, timeout)))?;
        if !status.is_success() {
            return Err(self.failure(CallProblem::Status {
                status: status.as_u16(),
                message: status_message(&body),
            }));
        }
        let answer: EmbeddingsResponse = serde_json::from_slice(&body)
            .map_err(|error| self.failure(malformed(&error, &body)))?;
        self.in_input_order(answer.data, batch.len())
    }

    /// Puts vectors back in input order by their `index` (answers may be reordered), checks that
    /// every input has exactly one, and normalises them.
    fn in_input_order(
        &self,
        items: Vec<EmbeddingItem>,
        expected: usize,
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        if items.len() != expected {
            return Err(self.failure(CallProblem::WrongCount {
                expected,
                got: items.len(),
            }));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (position, item) in items.into_iter().enumerate() {
            let index = item.index.unwrap_or(position);
            let Some(slot) = slots.get_mut(index) else {
                return Err(self.failure(CallProblem::Malformed {
                    detail: format!("index {index} is out of range for {expected} texts"),
                }));
            };
            if slot.is_some() {
                return Err(self.failure(CallProblem::Malformed {
                    detail: format!("index {index} appears twice"),
                }));
            }
            let mut vector = item.embedding;
            if !normalise(&mut vector) {
                return Err(self.failure(CallProblem::InvalidVector));
            }
            *slot = Some(vector);
        }
        // Every slot is filled: as many distinct in-range indices as slots.
        Ok(slots.into_iter().flatten().collect())
    }

    fn failure(&self, problem: CallProblem) -> LlmError {
        LlmError::call(Service::Embeddings, &self.url, problem)
    }
}

impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_texts(texts).map_err(EmbedError::from)
    }
}

/// Scales `vector` to unit length; false when it has no finite, non-zero length.
fn normalise(vector: &mut [f32]) -> bool {
    let norm = vector
        .iter()
        .map(|&value| f64::from(value) * f64::from(value))
        .sum::<f64>()
        .sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return false;
    }
    for value in vector.iter_mut() {
        *value = (f64::from(*value) / norm) as f32;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_scales_to_unit_length_and_refuses_what_it_cannot() {
        let mut vector = vec![3.0, 4.0];
        assert!(normalise(&mut vector));
        assert_eq!(vector, vec![0.6, 0.8]);
        assert!(!normalise(&mut [0.0, 0.0]));
        assert!(!normalise(&mut [f32::NAN, 1.0]));
        assert!(!normalise(&mut [f32::INFINITY]));
    }
}
