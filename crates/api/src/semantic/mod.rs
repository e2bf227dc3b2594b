//! Semantic memory inside the API: the embedder, the optional language model, the per-tenant
//! search indexes, and what ingest and search build from them.
//!
//! * [`Semantic`]: one per process, shared by handlers and workers through `AppState`.
//! * [`indexes`]: one in-memory hybrid index per tenant, kept in step with the database.
//! * [`enrich`]: tags, context lines and link descriptions, from the text or from the model.
//! * [`backfill`]: the background worker that (re)makes vectors that are missing or stale.

pub mod backfill;
pub mod enrich;
pub mod indexes;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use membrain_embed::{EmbedError, Embedder};
use membrain_llm::LanguageModel;
use membrain_memory::Embedding;

pub use indexes::{Indexes, SyncedIndex};

/// Thresholds of the ingest pipeline. Cosine similarities of all-MiniLM-L6-v2 vectors.
#[derive(Debug, Clone)]
pub struct SemanticTuning {
    /// A new memory this similar to an existing one (in scope) merges into it.
    pub duplicate_threshold: f32,
    /// A new memory is linked to existing ones at least this similar…
    pub link_threshold: f32,
    /// …at most this many.
    pub max_links: usize,
    /// Recent query vectors kept, so a repeated query skips the model.
    pub query_cache: usize,
}

impl Default for SemanticTuning {
    fn default() -> Self {
        Self {
            // Measured on MiniLM: a paraphrase of one fact scores ~0.92, the same sentence
            // negated ~0.85, two facts on one topic (coffee habit, coffee reflux) ~0.49,
            // unrelated facts ~0.15.
            duplicate_threshold: 0.9,
            link_threshold: 0.45,
            max_links: 3,
            query_cache: 1024,
        }
    }
}

/// The embedder and language model of this process, and the indexes built with them.
pub struct Semantic {
    embedder: Arc<dyn Embedder>,
    llm: Option<Arc<dyn LanguageModel>>,
    pub indexes: Indexes,
    pub tuning: SemanticTuning,
    query_cache: Mutex<lru::LruCache<String, Arc<[f32]>>>,
}

impl std::fmt::Debug for Semantic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semantic")
            .field("model", &self.embedder.model_id())
            .field("llm", &self.llm.is_some())
            .field("tuning", &self.tuning)
            .finish_non_exhaustive()
    }
}

impl Semantic {
    pub fn new(embedder: Arc<dyn Embedder>, llm: Option<Arc<dyn LanguageModel>>) -> Self {
        Self::with_tuning(embedder, llm, SemanticTuning::default())
    }

    pub fn with_tuning(
        embedder: Arc<dyn Embedder>,
        llm: Option<Arc<dyn LanguageModel>>,
        tuning: SemanticTuning,
    ) -> Self {
        let capacity = NonZeroUsize::new(tuning.query_cache).unwrap_or(NonZeroUsize::MIN);
        Self {
            indexes: Indexes::new(embedder.model_id(), embedder.dimensions()),
            embedder,
            llm,
            tuning,
            query_cache: Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    /// Identifies the vectors this process makes and compares.
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    pub fn llm(&self) -> Option<&dyn LanguageModel> {
        self.llm.as_deref()
    }

    /// Vectors for `texts`, made on a blocking thread (the model is CPU-bound).
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Embedding>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let embedder = self.embedder.clone();
        let vectors = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed(&refs)
        })
        .await
        .map_err(|e| EmbedError::Inference(format!("the embedding task failed: {e}")))??;
        let model = self.embedder.model_id();
        Ok(vectors
            .into_iter()
            .map(|v| Embedding::new(model, v))
            .collect())
    }

    /// A query's vector, from the cache of recent queries when it was asked before.
    pub async fn embed_query(&self, query: &str) -> Result<Arc<[f32]>, EmbedError> {
        if let Some(hit) = self.cache().get(query) {
            return Ok(hit.clone());
        }
        let vector: Arc<[f32]> = self
            .embed(vec![query.to_owned()])
            .await?
            .pop()
            .map(|e| e.vector.into())
            .ok_or_else(|| EmbedError::Inference("the embedder returned no vector".into()))?;
        self.cache().put(query.to_owned(), vector.clone());
        Ok(vector)
    }

    /// The vector of a text embedded recently (a query or a link description), if cached.
    pub fn cached_vector(&self, text: &str) -> Option<Embedding> {
        let vector = self.cache().get(text)?.clone();
        Some(Embedding::new(self.model_id(), vector.to_vec()))
    }

    /// Remembers vectors just made, so repeated texts skip the model.
    pub fn remember(&self, made: &[(String, Embedding)]) {
        let mut cache = self.cache();
        for (text, embedding) in made {
            if embedding.model == self.model_id() {
                cache.put(text.clone(), embedding.vector.clone().into());
            }
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, Arc<[f32]>>> {
        self.query_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
