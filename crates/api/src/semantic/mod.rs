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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use membrain_embed::{EmbedError, Embedder};
use membrain_fair::{Hold, Holders};
use membrain_llm::LanguageModel;
use membrain_memory::{Embedding, TenantId};
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

use crate::error::ApiError;
use crate::fair::{CpuPool, CpuPoolSettings};

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
    /// Recent query vectors kept per tenant (for up to 16 tenants), so a repeated query skips
    /// the model.
    pub query_cache: usize,
    /// Bytes the per-tenant search indexes of this process may hold together; the least
    /// recently used are dropped beyond it (and reload from the database on their next use).
    pub index_memory_budget: usize,
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
            index_memory_budget: 1024 * 1024 * 1024,
        }
    }
}

/// Tenants whose recent vectors are kept at once (the least recently used tenant's go first).
const CACHED_TENANTS: usize = 16;

/// Recent vectors, each tenant in a part of its own. Keyed by tenant, because a shared cache
/// would tell one tenant, by how fast it answers, which queries another asked; parted by tenant,
/// because in one shared LRU a tenant making thousands of texts (an ingest burst's link
/// descriptions) evicted every other tenant's query vectors, and each of their searches then ran
/// the model again (seen in the hostile bench: tenant B's searches, p50 15 → 22 ms).
struct VectorCache {
    tenants: lru::LruCache<TenantId, lru::LruCache<String, Arc<[f32]>>>,
    per_tenant: NonZeroUsize,
}

impl VectorCache {
    /// `per_tenant` vectors for each of up to [`CACHED_TENANTS`] tenants.
    fn new(per_tenant: NonZeroUsize) -> Self {
        Self {
            tenants: lru::LruCache::new(
                NonZeroUsize::new(CACHED_TENANTS).unwrap_or(NonZeroUsize::MIN),
            ),
            per_tenant,
        }
    }

    fn get(&mut self, tenant: &TenantId, text: &str) -> Option<Arc<[f32]>> {
        self.tenants.get_mut(tenant)?.get(text).cloned()
    }

    fn put(&mut self, tenant: &TenantId, text: String, vector: Arc<[f32]>) {
        let per_tenant = self.per_tenant;
        self.tenants
            .get_or_insert_mut(tenant.clone(), || lru::LruCache::new(per_tenant))
            .put(text, vector);
    }
}

/// The embedder and language model of this process, and the indexes built with them.
pub struct Semantic {
    embedder: Arc<dyn Embedder>,
    llm: Option<Arc<dyn LanguageModel>>,
    pub indexes: Indexes,
    pub tuning: SemanticTuning,
    query_cache: Mutex<VectorCache>,
    /// Where embeddings a request waits for (a query, an update, a link) run: the process's
    /// CPU pool, shared with the other CPU-heavy request work, so a tenant's share of the cores
    /// counts its embeddings and its regex-filtered searches together.
    cpu: Arc<CpuPool>,
    /// Embeddings of ingest batches, up to the CPU pool's size at once...
    ingest: Semaphore,
    /// ...but one per tenant while request work runs in the pool, so one tenant's burst never
    /// takes every core from the requests, and another tenant's batch runs beside it instead of
    /// after it. Alone, a tenant's ingest uses every core (twice the memories a second on two
    /// cores). Batches embedding now, per tenant:
    ingest_tenants: Holders<TenantId>,
    /// Rung when an ingest batch's embedding ends: a batch waiting for its tenant's turn looks
    /// again.
    ingest_done: Notify,
    /// The background embedder's calls: one at a time, in a lane of their own and at the lowest
    /// OS priority, so an ingest batch never waits for one (it once shared ingest's lane, and a
    /// tenant's new memory then waited for a call slowed by a heavy tenant's work).
    backfill: Semaphore,
    /// Ingest batches waiting for a permit: the background embedder starts no call while there
    /// are any, so a remote embedding service sees a tenant's new memory first.
    ingest_waiting: AtomicUsize,
}

/// Which background work an embedding is for; ingest goes first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackgroundWork {
    /// The contents of a batch of claimed ingest jobs, all of this tenant: it is waiting for
    /// them. The embedding runs at the tenant's priority (low when it used more than its share
    /// of the CPU lately): another tenant's jobs do not wait behind it, as the ingest workers
    /// leave one of them free for other tenants while one works for a heavy tenant.
    Ingest(TenantId),
    /// Missing or stale vectors (link descriptions, imports): nobody waits for them, so they
    /// always run at the lowest priority, below a heavy tenant's ingest.
    Backfill,
}

/// How often the background embedder looks again while ingest has the lane.
const BACKFILL_YIELD: std::time::Duration = std::time::Duration::from_millis(10);

/// Counts an ingest batch as waiting for as long as it lives (also when its future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An ingest batch's place among the embeddings running: its tenant counted, a permit held.
struct IngestPermit<'a> {
    semantic: &'a Semantic,
    /// Both taken out when dropped, so they are back before the waiting batches look.
    tenant: Option<Hold<TenantId>>,
    permit: Option<SemaphorePermit<'a>>,
}

impl Drop for IngestPermit<'_> {
    fn drop(&mut self) {
        drop(self.tenant.take());
        drop(self.permit.take());
        self.semantic.ingest_done.notify_waiters();
    }
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

    /// The default tuning, with the index memory budget and CPU pool the API is configured
    /// with.
    pub fn for_settings(
        embedder: Arc<dyn Embedder>,
        llm: Option<Arc<dyn LanguageModel>>,
        settings: &crate::ApiSettings,
    ) -> Self {
        let tuning = SemanticTuning {
            index_memory_budget: settings.index_memory_budget,
            ..SemanticTuning::default()
        };
        Self::with_cpu(
            embedder,
            llm,
            tuning,
            Arc::new(CpuPool::new(settings.cpu.clone())),
        )
    }

    /// `tuning`, with a CPU pool of the default size.
    pub fn with_tuning(
        embedder: Arc<dyn Embedder>,
        llm: Option<Arc<dyn LanguageModel>>,
        tuning: SemanticTuning,
    ) -> Self {
        let cpu = Arc::new(CpuPool::new(CpuPoolSettings::default()));
        Self::with_cpu(embedder, llm, tuning, cpu)
    }

    pub fn with_cpu(
        embedder: Arc<dyn Embedder>,
        llm: Option<Arc<dyn LanguageModel>>,
        tuning: SemanticTuning,
        cpu: Arc<CpuPool>,
    ) -> Self {
        let capacity = NonZeroUsize::new(tuning.query_cache).unwrap_or(NonZeroUsize::MIN);
        Self {
            indexes: Indexes::new(
                embedder.model_id(),
                embedder.dimensions(),
                tuning.index_memory_budget,
            ),
            embedder,
            llm,
            tuning,
            query_cache: Mutex::new(VectorCache::new(capacity)),
            ingest: Semaphore::new(cpu.gate().shares().slots.max(1)),
            ingest_tenants: Holders::default(),
            ingest_done: Notify::new(),
            cpu,
            backfill: Semaphore::new(1),
            ingest_waiting: AtomicUsize::new(0),
        }
    }

    /// Identifies the vectors this process makes and compares.
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    pub fn llm(&self) -> Option<&dyn LanguageModel> {
        self.llm.as_deref()
    }

    /// The CPU pool request work runs in (embeddings included).
    pub fn cpu(&self) -> &Arc<CpuPool> {
        &self.cpu
    }

    /// Vectors for `texts` that `tenant`'s request waits for, made in the CPU pool within the
    /// tenant's share (the model is CPU-bound). [`EmbedError::Busy`] when the share stays taken.
    pub async fn embed(
        &self,
        tenant: &TenantId,
        texts: Vec<String>,
    ) -> Result<Vec<Embedding>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let embedder = self.embedder.clone();
        let span = embed_span("request", texts.len());
        let vectors = self
            .cpu
            .run(tenant, move || {
                timed_embed(embedder.as_ref(), &texts, "request", &span)
            })
            .await
            .map_err(|failed| match failed.status {
                axum::http::StatusCode::SERVICE_UNAVAILABLE => EmbedError::Busy(failed.message),
                _ => EmbedError::Inference(failed.message),
            })??;
        Ok(self.wrap(vectors))
    }

    /// One text's vector for a write on the request path, or `None` when the embedder fails:
    /// the write still lands and the background embedder makes the vector later (`what` names
    /// the text in the log). Not when the tenant's CPU share is what is missing: that would
    /// hand its work to the background lane every tenant's ingest shares, so the caller is told
    /// to retry (503 `busy`).
    pub async fn embed_or_later(
        &self,
        tenant: &TenantId,
        text: String,
        what: &str,
    ) -> Result<Option<Embedding>, ApiError> {
        match self.embed(tenant, vec![text]).await {
            Ok(mut vectors) => Ok(vectors.pop()),
            Err(EmbedError::Busy(message)) => Err(ApiError::busy(message)),
            Err(e) => {
                tracing::warn!(error = %e, "could not embed {what}; made later");
                Ok(None)
            }
        }
    }

    fn wrap(&self, vectors: Vec<Vec<f32>>) -> Vec<Embedding> {
        let model = self.embedder.model_id();
        vectors
            .into_iter()
            .map(|v| Embedding::new(model, v))
            .collect()
    }

    /// Like [`embed_in_background`](Self::embed_in_background), but a batch the embedder
    /// refuses is retried text by text, so one text it will never embed (a poisoned input)
    /// costs only its own vector: each answer is the vector, or the refusal of that text.
    /// Errors that are not about the input (the service is down) fail the whole call.
    pub async fn embed_each_in_background(
        &self,
        texts: Vec<String>,
        work: BackgroundWork,
    ) -> Result<Vec<Result<Embedding, EmbedError>>, EmbedError> {
        match self.embed_in_background(texts.clone(), work.clone()).await {
            Ok(vectors) => Ok(vectors.into_iter().map(Ok).collect()),
            Err(error) if error.is_refusal() && texts.len() > 1 => {
                let mut answers = Vec::with_capacity(texts.len());
                for text in texts {
                    match self.embed_in_background(vec![text], work.clone()).await {
                        Ok(mut vector) => answers.push(vector.pop().ok_or_else(|| {
                            EmbedError::Inference("the embedder returned no vector".into())
                        })),
                        Err(error) if error.is_refusal() => answers.push(Err(error)),
                        Err(error) => return Err(error),
                    }
                }
                Ok(answers)
            }
            Err(error) if error.is_refusal() => Ok(vec![Err(error)]),
            Err(error) => Err(error),
        }
    }

    /// Vectors for ingest and the background embedder: one ingest batch at a time in this
    /// process (more while no request work runs) and, beside it, one background call.
    pub async fn embed_in_background(
        &self,
        texts: Vec<String>,
        work: BackgroundWork,
    ) -> Result<Vec<Embedding>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Held until the embedding ends: the permit of its lane.
        let (_ingest, _backfill) = match &work {
            BackgroundWork::Ingest(tenant) => {
                let _waiting = Waiting::new(&self.ingest_waiting);
                (Some(self.ingest_permit(tenant).await), None)
            }
            BackgroundWork::Backfill => (None, Some(self.backfill_permit().await?)),
        };
        let embedder = self.embedder.clone();
        let lane = match &work {
            BackgroundWork::Ingest(_) => "ingest",
            BackgroundWork::Backfill => "backfill",
        };
        let span = embed_span(lane, texts.len());
        let embed = move || timed_embed(embedder.as_ref(), &texts, lane, &span);
        let vectors = match &work {
            BackgroundWork::Ingest(tenant) => self.cpu.gate().run_blocking(tenant, embed).await,
            BackgroundWork::Backfill => membrain_fair::run_in_background(embed).await,
        }
        .map_err(|e| EmbedError::Inference(format!("the embedding task failed: {e}")))??;
        Ok(self.wrap(vectors))
    }

    /// A permit to embed a batch of `tenant`'s jobs, waiting while every permit is taken, or
    /// while request work runs and this tenant already has a batch embedding.
    async fn ingest_permit(&self, tenant: &TenantId) -> IngestPermit<'_> {
        loop {
            // Registered before looking, so an end between the look and the wait is not missed.
            let done = self.ingest_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if let Some(permit) = self.try_ingest_permit(tenant) {
                return permit;
            }
            done.await;
        }
    }

    fn try_ingest_permit(&self, tenant: &TenantId) -> Option<IngestPermit<'_>> {
        let mut embedding = self.ingest_tenants.lock();
        let requests_run = self.cpu.gate().in_flight() > 0;
        if requests_run && embedding.contains(tenant) {
            return None;
        }
        let permit = self.ingest.try_acquire().ok()?;
        Some(IngestPermit {
            semantic: self,
            tenant: Some(embedding.hold(tenant)),
            permit: Some(permit),
        })
    }

    /// The background embedder's permit, taken only while no ingest batch waits, looked for
    /// again every [`BACKFILL_YIELD`].
    async fn backfill_permit(&self) -> Result<SemaphorePermit<'_>, EmbedError> {
        loop {
            if self.ingest_waiting.load(Ordering::SeqCst) == 0 {
                let permit =
                    self.backfill.acquire().await.map_err(|_| {
                        EmbedError::Inference("the embedder is shutting down".into())
                    })?;
                if self.ingest_waiting.load(Ordering::SeqCst) == 0 {
                    return Ok(permit);
                }
            }
            tokio::time::sleep(BACKFILL_YIELD).await;
        }
    }

    /// A query's vector, from the tenant's recent queries when it asked it before.
    pub async fn embed_query(
        &self,
        tenant: &TenantId,
        query: &str,
    ) -> Result<Arc<[f32]>, EmbedError> {
        if let Some(hit) = self.cache().get(tenant, query) {
            return Ok(hit);
        }
        let vector: Arc<[f32]> = self
            .embed(tenant, vec![query.to_owned()])
            .await?
            .pop()
            .map(|e| e.vector.into())
            .ok_or_else(|| EmbedError::Inference("the embedder returned no vector".into()))?;
        self.cache().put(tenant, query.to_owned(), vector.clone());
        Ok(vector)
    }

    /// The vector of a text the tenant had embedded recently (a query or a link description),
    /// if cached.
    pub fn cached_vector(&self, tenant: &TenantId, text: &str) -> Option<Embedding> {
        let vector = self.cache().get(tenant, text)?;
        Some(Embedding::new(self.model_id(), vector.to_vec()))
    }

    /// Remembers vectors just made for a tenant's texts, so repeated texts skip the model.
    pub fn remember(&self, made: &[(TenantId, String, Embedding)]) {
        let mut cache = self.cache();
        for (tenant, text, embedding) in made {
            if embedding.model == self.model_id() {
                cache.put(tenant, text.clone(), embedding.vector.clone().into());
            }
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VectorCache> {
        self.query_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The span of one embedding call (trace-only: see `membrain_telemetry::TRACE_ONLY_TARGET`),
/// made where the call is asked for, so it sits under the request or job that asked.
fn embed_span(lane: &'static str, texts: usize) -> tracing::Span {
    tracing::info_span!(target: "membrain_trace", "embed", lane, texts)
}

/// Embeds `texts` on this (blocking) thread inside `span`, recording the batch's size and time
/// (`membrain_embedding_batch_size`, `membrain_embedding_duration_seconds`, by lane).
fn timed_embed(
    embedder: &dyn Embedder,
    texts: &[String],
    lane: &'static str,
    span: &tracing::Span,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let _entered = span.enter();
    let started = std::time::Instant::now();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&refs);
    metrics::histogram!("membrain_embedding_duration_seconds", "lane" => lane)
        .record(started.elapsed().as_secs_f64());
    metrics::histogram!("membrain_embedding_batch_size", "lane" => lane).record(texts.len() as f64);
    vectors
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fair::CpuPoolSettings;

    #[test]
    fn one_tenants_many_vectors_never_evict_anothers() {
        let tenant = |name: &str| TenantId::parse(name).unwrap_or_else(|e| panic!("{e}"));
        let (busy, quiet) = (tenant("busy"), tenant("quiet"));
        let mut cache = VectorCache::new(NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN));
        cache.put(&quiet, "what do I drink?".into(), Arc::from([1.0f32]));
        for n in 0..100 {
            cache.put(&busy, format!("link description {n}"), Arc::from([0.5f32]));
        }
        assert_eq!(
            cache.get(&quiet, "what do I drink?").as_deref(),
            Some(&[1.0f32][..]),
            "the quiet tenant's query survives the busy tenant's hundred texts"
        );
        assert!(
            cache.get(&busy, "link description 0").is_none(),
            "the busy tenant's part is bounded"
        );
        assert!(cache.get(&busy, "link description 99").is_some());
        assert!(
            cache.get(&busy, "what do I drink?").is_none(),
            "tenants never see each other's"
        );
    }

    /// Counts how many `embed` calls run at once, each taking a while.
    #[derive(Default)]
    struct SlowEmbedder {
        running: AtomicUsize,
        most: AtomicUsize,
        /// The first text of each call, in the order the calls started.
        started: Mutex<Vec<String>>,
    }

    impl Embedder for SlowEmbedder {
        fn model_id(&self) -> &str {
            "slow-test"
        }

        fn dimensions(&self) -> usize {
            2
        }

        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            if let (Some(first), Ok(mut started)) = (texts.first(), self.started.lock()) {
                started.push((*first).to_owned());
            }
            std::thread::sleep(Duration::from_millis(80));
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect())
        }
    }

    fn ingest() -> BackgroundWork {
        BackgroundWork::Ingest(TenantId::parse("ingesting").unwrap())
    }

    fn semantic_over(embedder: Arc<SlowEmbedder>) -> Arc<Semantic> {
        let cpu = Arc::new(CpuPool::new(CpuPoolSettings {
            threads: 2,
            ..CpuPoolSettings::default()
        }));
        Arc::new(Semantic::with_cpu(
            embedder,
            None,
            SemanticTuning::default(),
            cpu,
        ))
    }

    /// A request of tenant `busy` holding a slot of the pool for `millis`, running once this
    /// returns.
    async fn request_work_in_the_pool(
        semantic: &Arc<Semantic>,
        millis: u64,
    ) -> tokio::task::JoinHandle<Result<(), ApiError>> {
        let cpu = semantic.cpu().clone();
        let tenant = TenantId::parse("busy").unwrap();
        let request = tokio::spawn(async move {
            cpu.run(&tenant, move || {
                std::thread::sleep(Duration::from_millis(millis))
            })
            .await
        });
        while semantic.cpu().gate().in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        request
    }

    /// Two ingest batches at once, of these tenants.
    async fn two_background_batches(semantic: &Arc<Semantic>, tenants: [&str; 2]) {
        let calls: Vec<_> = tenants
            .into_iter()
            .map(|tenant| {
                let semantic = semantic.clone();
                let work = BackgroundWork::Ingest(TenantId::parse(tenant).unwrap());
                tokio::spawn(
                    async move { semantic.embed_in_background(vec!["x".into()], work).await },
                )
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenants_batches_use_every_core_only_while_no_request_work_runs() {
        let embedder = Arc::new(SlowEmbedder::default());
        let semantic = semantic_over(embedder.clone());
        two_background_batches(&semantic, ["ingesting", "ingesting"]).await;
        assert_eq!(
            embedder.most.load(Ordering::SeqCst),
            2,
            "an idle pool lends its cores"
        );

        let embedder = Arc::new(SlowEmbedder::default());
        let semantic = semantic_over(embedder.clone());
        let request = request_work_in_the_pool(&semantic, 600).await;
        two_background_batches(&semantic, ["ingesting", "ingesting"]).await;
        assert_eq!(
            embedder.most.load(Ordering::SeqCst),
            1,
            "request work in the pool keeps a tenant's batches to one at a time"
        );
        assert_eq!(
            embedder.started.lock().unwrap().len(),
            2,
            "the second batch ran once the first was done"
        );
        // Another tenant's batch does not wait behind the first tenant's.
        let embedder_two = Arc::new(SlowEmbedder::default());
        let two = semantic_over(embedder_two.clone());
        let request_two = request_work_in_the_pool(&two, 600).await;
        two_background_batches(&two, ["ingesting", "another"]).await;
        assert_eq!(
            embedder_two.most.load(Ordering::SeqCst),
            2,
            "two tenants' batches run side by side"
        );
        request.await.unwrap().unwrap();
        request_two.await.unwrap().unwrap();
    }

    /// An ingest batch never waits for the background embedder's call in progress (it runs
    /// beside it), and goes before background calls that asked earlier.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ingest_batches_go_before_the_background_embedder() {
        let embedder = Arc::new(SlowEmbedder::default());
        let semantic = semantic_over(embedder.clone());
        let spawn = |text: &'static str, work: BackgroundWork| {
            let semantic = semantic.clone();
            tokio::spawn(async move { semantic.embed_in_background(vec![text.into()], work).await })
        };
        // Request work in the pool: one ingest batch at a time, one background call.
        let request = request_work_in_the_pool(&semantic, 800).await;
        let first = spawn("backfill 1", BackgroundWork::Backfill);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = spawn("backfill 2", BackgroundWork::Backfill);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let ingest = spawn("ingest", ingest());
        for call in [first, second, ingest] {
            call.await.unwrap().unwrap();
        }
        let started = embedder.started.lock().unwrap().clone();
        assert_eq!(started, ["backfill 1", "ingest", "backfill 2"]);
        assert_eq!(
            embedder.most.load(Ordering::SeqCst),
            2,
            "the ingest batch ran beside the first background call, not after it"
        );
        request.await.unwrap().unwrap();
    }
}
