//! Clients for OpenAI-compatible HTTP services, the remote half of Membrain's semantic memory:
//! vectors from an embeddings endpoint and answers from a chat-completions endpoint. Anything that
//! speaks OpenAI's wire format works: OpenAI itself, vLLM, llama.cpp's server, Ollama, LiteLLM.
//!
//! Main types:
//!
//! * [`Endpoint`]: a service's API root (`http://host:port/v1`), its optional key
//!   ([`EndpointKey`], never printed) and the time a call may take.
//! * [`OpenAiEmbedder`], a [`membrain_embed::Embedder`] over `POST {base}/embeddings`: batches of
//!   at most [`MAX_EMBEDDING_BATCH`] texts, vectors put back in input order and L2-normalised, the
//!   dimensions found by one probe call when not given.
//! * [`LanguageModel`], the seam for anything that completes a prompt, and [`OpenAiChat`], which
//!   implements it over `POST {base}/chat/completions` at temperature 0.
//! * [`LlmError`]: every message names the service and URL, and what to check.
//!
//! ```no_run
//! use membrain_embed::Embedder;
//! use membrain_llm::{Endpoint, EndpointKey, OpenAiEmbedder};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let endpoint = Endpoint::new("http://127.0.0.1:8080/v1")?.with_api_key(EndpointKey::new("sk-…"));
//! // Blocking: async callers construct and call it inside `spawn_blocking`.
//! let embedder = OpenAiEmbedder::connect(endpoint, "text-embedding-3-small", None)?;
//! let vectors = embedder.embed(&["The user drinks coffee every morning"])?;
//! assert_eq!(vectors[0].len(), embedder.dimensions());
//! # Ok(())
//! # }
//! ```
//!
//! **Architecture invariant:** no CLI, SQL or MCP, and no knowledge of what the vectors or answers
//! are for; keys are only ever sent as a bearer token, never logged or shown by `Debug`. The
//! embedder is blocking (the [`membrain_embed::Embedder`] contract), so it must not be built,
//! called or dropped on an async worker thread.

mod chat;
mod embeddings;
mod endpoint;
mod error;

pub use chat::{DEFAULT_CHAT_TIMEOUT, OpenAiChat};
pub use embeddings::{DEFAULT_EMBEDDING_TIMEOUT, MAX_EMBEDDING_BATCH, OpenAiEmbedder};
pub use endpoint::{Endpoint, EndpointKey};
pub use error::{CallProblem, LlmError, Service};

/// Completes a prompt: a system message that sets the task, a user message that carries the input.
///
/// Implementations are shared between tasks and must answer deterministically where the service
/// allows it (temperature 0).
#[async_trait::async_trait]
pub trait LanguageModel: Send + Sync {
    /// The model's answer text.
    async fn complete(&self, system: &str, user: &str) -> Result<String, LlmError>;
}
