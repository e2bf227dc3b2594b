//! The ingest worker: takes durable jobs from the store, derives what a memory needs, and
//! writes it. Runs inside the API process; several processes may run workers on one PostgreSQL
//! database, since claiming a job is atomic and leased.
//!
//! The pipeline, per job: the content's vector (jobs are claimed a few at a time and embedded in
//! one batch, which is several times faster than one by one); the most similar memories of the
//! tenant inside `ingestion_scope`; a near-duplicate above the duplicate threshold is merged into
//! instead of stored twice; the others above the link threshold are linked with a description
//! saying how they relate; tags (when the caller gave none) and a context line. Everything works
//! from the text and the vectors; a language model, when configured, writes the words. The
//! choices themselves (which memory is the near-duplicate, which are linked, and, in the store's
//! transaction, whether to create or merge) are `membrain_memory::ingest`'s pure functions.
//!
//! Fairness and ownership: a batch holds one tenant's jobs, and tenants take turns (each worker
//! passes the tenant of its last batch to the claim); between two jobs of a batch the worker
//! looks for another tenant's queued job and, if there is one, hands the rest of its batch back
//! (their vectors kept in the recent-vectors cache, so the model's work is not lost), so one
//! tenant's burst delays another's job by at most the job in progress, not a whole batch; while
//! request work runs, the workers of a process hold different tenants ([`IngestTeam`]), so a
//! heavy tenant's burst keeps one worker and another tenant's new memory finds a free one; the
//! worker's writes wait in a lane of their own at the store's writer, so a tenant's own writes
//! do not hold its batches up either. A worker renews the leases of its batch while it works (a
//! slow language model does not hand the job to a second worker), and completes, fails or
//! requeues a job only while its claim still holds it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use membrain_fair::{Hold, Holders};
use membrain_index::TenantIndex;
use membrain_memory::ingest::{
    NeighbourThresholds, Neighbours, SUBJECT_CANDIDATES, SimilarMemory, choose_neighbours,
    same_fact, subject_candidates, subject_links,
};
use membrain_memory::phrases::{and_list, link_subjects, shared_subjects};
use membrain_memory::text::{content_hash, keywords};
use membrain_memory::{Embedding, Limits, MemoryId, TagFilter, TenantId};
use membrain_store::{IngestJob, JobError, MemoryStore, PreparedLink, PreparedMemory, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::semantic::enrich::{describe_link, enrich};
use crate::semantic::{BackgroundWork, Semantic, SemanticTuning};

/// A job that failed this many times for reasons other than bad input is given up on.
const MAX_ATTEMPTS: i64 = 5;
/// Keywords kept per memory (at ingest and on update).
pub(crate) const KEYWORDS_PER_MEMORY: usize = 8;
/// Jobs claimed together so their contents are embedded in one batch. Small, so another tenant's
/// job waits little behind a batch in progress (16 ingests about 15% faster alone, but doubles
/// that wait); large enough that the model runs batched.
const CLAIM_BATCH: usize = 8;

/// The ingest workers of one process, as they and the route that queues jobs see each other:
/// whose batches they hold, and a bell that wakes a free worker.
///
/// While request work runs, a worker passes over the tenants its fellow workers hold: a heavy
/// tenant's burst keeps one worker, not all, and another tenant's new memory is claimed at once
/// instead of after a batch's embedding. While no request work runs, a free worker helps with a
/// held tenant's jobs (alone, a tenant's import uses every core).
#[derive(Debug, Default)]
pub struct IngestTeam {
    ready: Notify,
    /// The tenants whose batches are held now.
    held: Holders<TenantId>,
    /// One worker claims at a time, so two never take the same tenant by both looking before
    /// either held it.
    claiming: tokio::sync::Mutex<()>,
}

impl IngestTeam {
    /// A job of `tenant` was queued: wakes a free worker, unless a worker holds a batch of this
    /// tenant already (it comes back for the job after that batch, and the free worker stays
    /// free for other tenants).
    pub fn job_queued(&self, tenant: &TenantId) {
        if !self.held.holds(tenant) {
            self.ready.notify_one();
        }
    }
}

/// Jobs claimed together, all of one tenant, and their place in the team.
struct Batch {
    jobs: Vec<IngestJob>,
    held: Hold<TenantId>,
}

pub struct IngestWorker {
    store: Arc<dyn MemoryStore>,
    semantic: Arc<Semantic>,
    team: Arc<IngestTeam>,
    lease: Duration,
    poll_interval: Duration,
    /// The limits `POST /memories` checked the job against, and the tag, history and quota
    /// limits the written memory must keep.
    limits: Arc<Limits>,
}

impl IngestWorker {
    pub fn new(
        store: Arc<dyn MemoryStore>,
        semantic: Arc<Semantic>,
        team: Arc<IngestTeam>,
        lease: Duration,
        poll_interval: Duration,
        limits: Arc<Limits>,
    ) -> Self {
        Self {
            store,
            semantic,
            team,
            lease,
            poll_interval,
            limits,
        }
    }

    /// Works until `shutdown`; jobs in progress are finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        // The tenant of the last batch: the next claim serves the tenant after it.
        let mut last_tenant = None;
        while !shutdown.is_cancelled() {
            match self.claim_batch(last_tenant.as_ref()).await {
                Ok(Some(Batch { jobs, held })) => {
                    failures = 0;
                    last_tenant = Some(held.key().clone());
                    self.process_batch(jobs).await;
                    drop(held);
                }
                Ok(None) => {
                    failures = 0;
                    tokio::select! {
                        _ = self.team.ready.notified() => {}
                        _ = tokio::time::sleep(self.poll_interval) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    tracing::warn!(error = %e, ?backoff, "could not claim ingest jobs");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
        }
    }

    /// Up to [`CLAIM_BATCH`] jobs of the tenant whose turn it is after `last_tenant`, passing
    /// over the tenants fellow workers hold unless no request work runs (see [`IngestTeam`]).
    async fn claim_batch(
        &self,
        last_tenant: Option<&TenantId>,
    ) -> Result<Option<Batch>, StoreError> {
        let _claiming = self.team.claiming.lock().await;
        let held: Vec<TenantId> = self.team.held.lock().keys().cloned().collect();
        let mut jobs = self
            .store
            .claim_ingest_jobs(self.lease, CLAIM_BATCH, last_tenant, &held)
            .await?;
        if jobs.is_empty() && !held.is_empty() && self.semantic.cpu().gate().in_flight() == 0 {
            jobs = self
                .store
                .claim_ingest_jobs(self.lease, CLAIM_BATCH, last_tenant, &[])
                .await?;
        }
        self.record_queue_depth(jobs.is_empty() && held.is_empty())
            .await;
        let Some(tenant) = jobs.first().map(|job| job.tenant.clone()) else {
            return Ok(None);
        };
        Ok(Some(Batch {
            held: self.team.held.hold(&tenant),
            jobs,
        }))
    }

    async fn process_batch(&self, jobs: Vec<IngestJob>) {
        let held: Vec<_> = jobs
            .iter()
            .filter_map(|job| Some((job.id, job.lease.clone()?)))
            .collect();
        let renewing = CancellationToken::new();
        let renewer = tokio::spawn(renew_leases(
            self.store.clone(),
            held,
            self.lease,
            renewing.clone(),
        ));
        let work = async {
            let Some(tenant) = jobs.first().map(|job| job.tenant.clone()) else {
                return;
            };
            let vectors = self.batch_vectors(&jobs).await;
            let mut pending: VecDeque<_> = jobs.into_iter().zip(vectors).collect();
            while let Some((job, vector)) = pending.pop_front() {
                let span = tracing::info_span!("ingest", job_id = %job.id, tenant = %job.tenant);
                self.process(job, vector).instrument(span).await;
                if !pending.is_empty() && self.other_tenant_waits(&tenant).await {
                    self.hand_back(pending.into_iter().collect()).await;
                    break;
                }
            }
        };
        work.await;
        renewing.cancel();
        let _ = renewer.await;
    }

    /// The vector of each job's content: kept from a batch handed back earlier, else made now,
    /// in one batch. Without vectors ingest still stores the memories (lexical search finds
    /// them); the background embedder makes the vectors once the embedder works again. A text
    /// the embedder refuses costs only its own vector, not its batch's.
    async fn batch_vectors(&self, jobs: &[IngestJob]) -> Vec<Option<Embedding>> {
        let mut vectors: Vec<Option<Embedding>> = jobs
            .iter()
            .map(|job| {
                self.semantic
                    .cached_vector(&job.tenant, &job.request.memory.content)
            })
            .collect();
        let missing: Vec<usize> = (0..jobs.len()).filter(|i| vectors[*i].is_none()).collect();
        if missing.is_empty() {
            return vectors;
        }
        // A batch is claimed for one tenant: its embeddings count against that tenant's share.
        let tenant = jobs[missing[0]].tenant.clone();
        let texts = missing
            .iter()
            .map(|i| jobs[*i].request.memory.content.clone())
            .collect();
        match self
            .semantic
            .embed_each_in_background(texts, BackgroundWork::Ingest(tenant))
            .await
        {
            Ok(answers) => {
                for (i, answer) in missing.into_iter().zip(answers) {
                    vectors[i] = answer.ok();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = missing.len(), "could not embed; storing without vectors");
            }
        }
        vectors
    }

    /// Whether another tenant has a job queued while this worker holds `tenant`'s batch. A
    /// failed look counts as no: the batch goes on, as it would have before.
    async fn other_tenant_waits(&self, tenant: &TenantId) -> bool {
        self.store
            .other_tenant_waiting(tenant)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not look for other tenants' jobs");
                false
            })
    }

    /// Gives the rest of a batch back to the queue so that another tenant's turn comes first,
    /// keeping the vectors already made for it.
    async fn hand_back(&self, rest: Vec<(IngestJob, Option<Embedding>)>) {
        let made: Vec<_> = rest
            .iter()
            .filter_map(|(job, vector)| {
                let vector = vector.clone()?;
                Some((
                    job.tenant.clone(),
                    job.request.memory.content.clone(),
                    vector,
                ))
            })
            .collect();
        self.semantic.remember(&made);
        let jobs: Vec<IngestJob> = rest.into_iter().map(|(job, _)| job).collect();
        match self.store.release_ingest_jobs(&jobs).await {
            Ok(released) => {
                tracing::debug!(
                    released,
                    "handed the rest of a batch back for another tenant"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not hand jobs back; their leases will expire");
            }
        }
    }

    /// Sets `membrain_ingest_queue_depth` where a claim makes it cheap: none left when a claim
    /// that passed over no tenant found nothing, else counted after a batch is claimed (one
    /// indexed count per batch of up to [`CLAIM_BATCH`] jobs, never per idle poll).
    async fn record_queue_depth(&self, queue_empty: bool) {
        if queue_empty {
            metrics::gauge!("membrain_ingest_queue_depth").set(0.0);
            return;
        }
        match self.store.queued_ingest_jobs().await {
            Ok(queued) => metrics::gauge!("membrain_ingest_queue_depth").set(queued as f64),
            Err(error) => tracing::debug!(%error, "could not count queued ingest jobs"),
        }
    }

    async fn process(&self, job: IngestJob, vector: Option<Embedding>) {
        let prepared = prepare(&self.store, &self.semantic, &job, vector, &self.limits);
        let outcome = match prepared.await {
            Ok(prepared) => {
                self.store
                    .complete_ingest(&job, prepared, &self.limits)
                    .await
            }
            Err(e) => Err(e),
        };
        let failure = match outcome {
            Ok(result) => {
                tracing::info!(memory_id = %result.memory_id, action = ?result.action, "ingested");
                record_job_done(&job, "completed");
                return;
            }
            Err(StoreError::Conflict(reason)) => {
                tracing::info!(%reason, "job already finished elsewhere");
                return;
            }
            // A quota does not pass by retrying: the job fails and says which, at once.
            Err(StoreError::QuotaExceeded(message)) => JobError {
                code: "QUOTA_EXCEEDED".into(),
                message,
            },
            // An outage (database down, disk full) is not the job's fault: it waits, however
            // many attempts that takes, so an acknowledged write is never given up on.
            Err(e) if job.attempts >= MAX_ATTEMPTS && !e.is_unavailable() => {
                tracing::error!(error = %e, attempts = job.attempts, "giving up on ingest job");
                JobError {
                    code: "INGEST_FAILED".into(),
                    message: format!(
                        "ingest failed after {} attempts; the server's log says why",
                        job.attempts
                    ),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, attempts = job.attempts, "ingest failed; requeueing");
                if let Err(e) = self.store.requeue_ingest(&job).await {
                    tracing::warn!(error = %e, "could not requeue; the lease will expire instead");
                }
                return;
            }
        };
        match self.store.fail_ingest(&job, &failure).await {
            Ok(()) => {
                tracing::info!(code = %failure.code, "ingest job failed");
                record_job_done(&job, "failed");
            }
            Err(StoreError::Conflict(reason)) => {
                tracing::info!(%reason, "job already finished elsewhere");
            }
            Err(e) => {
                tracing::error!(error = %e, "could not mark the job failed; it will be retried");
            }
        }
    }
}

/// Counts a finished job and the time since it was queued (`membrain_ingest_job_latency_seconds`).
fn record_job_done(job: &IngestJob, outcome: &'static str) {
    metrics::counter!("membrain_ingest_jobs_total", "outcome" => outcome).increment(1);
    let waited = (chrono::Utc::now() - job.created_at)
        .to_std()
        .unwrap_or_default();
    metrics::histogram!("membrain_ingest_job_latency_seconds").record(waited.as_secs_f64());
}

/// Keeps the batch's leases from running out while it is worked on: renews them every third of
/// the lease until `done`. A job another worker took over meanwhile is simply not renewed (its
/// completion here will then be refused).
async fn renew_leases(
    store: Arc<dyn MemoryStore>,
    jobs: Vec<(membrain_memory::JobId, membrain_store::LeaseToken)>,
    lease: Duration,
    done: CancellationToken,
) {
    let every = (lease / 3).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match store.renew_ingest_leases(&jobs, lease).await {
            Ok(renewed) if renewed < jobs.len() => {
                tracing::info!(
                    renewed,
                    held = jobs.len(),
                    "some ingest jobs were taken over by another worker"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not renew ingest leases"),
        }
    }
}

/// Derives everything a memory needs: the dedup hash, keywords, tags and context, the
/// near-duplicate to merge into, and the links to make: to the most similar memories, then to
/// memories that mention the same name, identifier or phrase however unlike in meaning.
pub async fn prepare(
    store: &Arc<dyn MemoryStore>,
    semantic: &Semantic,
    job: &IngestJob,
    embedding: Option<Embedding>,
    limits: &Limits,
) -> Result<PreparedMemory, StoreError> {
    let mut new = job.request.memory.clone();
    let keywords = keywords(&new.content, KEYWORDS_PER_MEMORY);
    let llm = semantic.llm();
    let enrichment = enrich(llm, &new.content, &new.category, &new.tags).await;
    new.tags = enrichment.tags;

    let vector = embedding
        .as_ref()
        .and_then(|e| e.for_model(semantic.model_id()));
    let subjects = link_subjects(&new.content);
    // The scope was checked when the job was queued; a scope that no longer compiles (a
    // tighter limit configured since) links nothing rather than everything.
    let scope = match job.request.ingestion_scope.as_deref() {
        Some(regex) => match TagFilter::from_scope_regex(Some(regex), limits) {
            Ok(filter) => Some(Some(filter)),
            Err(e) => {
                tracing::warn!(error = %e.message, "ignoring an invalid ingestion_scope");
                None
            }
        },
        None => Some(None),
    };
    // Without a vector or a name to look up, there is nothing to link by.
    let Some(scope) = scope.filter(|_| vector.is_some() || !subjects.is_empty()) else {
        return Ok(prepared(
            new,
            keywords,
            enrichment.context,
            embedding,
            None,
            vec![],
        ));
    };
    let in_scope = |tags: &[String]| scope.as_ref().is_none_or(|f| f.matches(tags));
    let thresholds = neighbour_thresholds(&semantic.tuning);
    let (similar, by_subject) = {
        let index = semantic
            .indexes
            .current(store.as_ref(), &job.tenant)
            .await?;
        let index = &index.index;
        let similar: Vec<SimilarMemory> = match vector {
            Some(vector) => index
                .dense(
                    vector,
                    &in_scope,
                    thresholds.candidates_wanted(),
                    thresholds.link_threshold,
                )
                .into_iter()
                .map(|hit| SimilarMemory {
                    id: hit.id,
                    similarity: hit.score,
                })
                .collect(),
            None => Vec::new(),
        };
        let by_subject = find_by_subjects(index, &subjects, vector, &in_scope, &thresholds);
        (similar, by_subject)
    };
    let mut neighbours = choose_neighbours(&similar, &thresholds);
    // Alike by meaning is not yet the same fact: one with other names, numbers or
    // identifiers (not a one-value update) is linked, not merged.
    if let Some(candidate) = neighbours.near_duplicate {
        let stored = store.memory_briefs(&job.tenant, &[candidate.id]).await?;
        if stored
            .first()
            .is_some_and(|old| !same_fact(&old.content, &new.content))
        {
            neighbours.near_duplicate = None;
            neighbours.links.insert(0, candidate);
            neighbours.links.truncate(thresholds.max_links);
        }
    }
    let candidates = neighbours.links.clone();
    let by_subject = subject_candidates(&by_subject, &neighbours, &thresholds);
    // One read for both: the links' contents to describe, the others' to confirm a subject.
    let ids: Vec<_> = candidates.iter().chain(&by_subject).map(|c| c.id).collect();
    let others = store.memory_briefs(&job.tenant, &ids).await?;
    let content_of = |id| others.iter().find(|o| o.id == id).map(|o| &o.content);
    let mut descriptions = Vec::with_capacity(ids.len());
    for candidate in &candidates {
        let Some(other) = content_of(candidate.id) else {
            continue;
        };
        let description = describe_link(llm, &new.content, other, candidate.similarity).await;
        descriptions.push((candidate.id, description));
    }
    // A shared name is confirmed in the text (a lexical hit may share only common words), and
    // described from it with no model call: "both mention Lisbon" says exactly why.
    let mut shared = Vec::new();
    let mut confirmed = Vec::new();
    for candidate in by_subject {
        let Some(other) = content_of(candidate.id) else {
            continue;
        };
        let mentioned = shared_subjects(&new.content, other, 3);
        if !mentioned.is_empty() {
            shared.push((candidate.id, mentioned));
            confirmed.push(candidate);
        }
    }
    add_subject_links(
        &mut descriptions,
        &confirmed,
        &shared,
        &neighbours,
        &thresholds,
    );
    // Descriptions repeat ("both about coffee"): a recent one reuses its vector. The others
    // are left to the background embedder, which embeds them in large batches, so a link
    // costs ingest no model time (traversal embeds a missing one on the spot).
    let links = descriptions
        .into_iter()
        .map(|(other, description)| PreparedLink {
            other,
            embedding: semantic.cached_vector(&job.tenant, &description),
            description,
        })
        .collect();
    Ok(prepared(
        new,
        keywords,
        enrichment.context,
        embedding,
        neighbours.near_duplicate,
        links,
    ))
}

/// Appends to `descriptions` the links [`subject_links`] chooses among the `confirmed`
/// memories, each described by what both mention.
fn add_subject_links(
    descriptions: &mut Vec<(MemoryId, String)>,
    confirmed: &[SimilarMemory],
    shared: &[(MemoryId, Vec<String>)],
    neighbours: &Neighbours,
    thresholds: &NeighbourThresholds,
) {
    for link in subject_links(confirmed.to_vec(), neighbours, thresholds) {
        if let Some((_, mentioned)) = shared.iter().find(|(id, _)| *id == link.id) {
            descriptions.push((link.id, format!("both mention {}", and_list(mentioned))));
        }
    }
}

/// The memories in scope that a lexical search finds by the new memory's `subjects` (best
/// first, a few more than can be linked, since some are chosen by similarity already or share
/// only common words), each with its similarity to `vector` when both have one.
fn find_by_subjects(
    index: &TenantIndex,
    subjects: &[String],
    vector: Option<&[f32]>,
    in_scope: &dyn Fn(&[String]) -> bool,
    thresholds: &NeighbourThresholds,
) -> Vec<SimilarMemory> {
    if subjects.is_empty() {
        return Vec::new();
    }
    let wanted = SUBJECT_CANDIDATES.saturating_add(thresholds.candidates_wanted());
    index
        .lexical(&subjects.join(" "), in_scope, wanted)
        .into_iter()
        .map(|hit| SimilarMemory {
            id: hit.id,
            similarity: match (vector, index.vector(hit.id)) {
                (Some(ours), Some(theirs)) if ours.len() == theirs.len() => {
                    ours.iter().zip(theirs).map(|(a, b)| a * b).sum()
                }
                _ => 0.0,
            },
        })
        .collect()
}

/// The thresholds of [`SemanticTuning`] that choose a new memory's near-duplicate and links.
fn neighbour_thresholds(tuning: &SemanticTuning) -> NeighbourThresholds {
    NeighbourThresholds {
        duplicate_threshold: tuning.duplicate_threshold,
        link_threshold: tuning.link_threshold,
        max_links: tuning.max_links,
    }
}

fn prepared(
    new: membrain_memory::NewMemory,
    keywords: Vec<String>,
    context: String,
    embedding: Option<Embedding>,
    near_duplicate: Option<SimilarMemory>,
    links: Vec<PreparedLink>,
) -> PreparedMemory {
    PreparedMemory {
        content_hash: content_hash(&new.content),
        keywords,
        context,
        new,
        embedding,
        near_duplicate,
        links,
    }
}

#[cfg(test)]
mod tests {
    use membrain_embed::{EmbedError, Embedder};
    use membrain_memory::NewMemory;
    use membrain_store::testing::TestDatabase;
    use membrain_store::{Backend, IngestRequest};

    use super::*;

    const DIMENSIONS: usize = 8;

    /// The vectors come with the jobs (one axis each, or a mix), so nothing is embedded here.
    struct GivenVectors;

    impl Embedder for GivenVectors {
        fn model_id(&self) -> &str {
            "given"
        }

        fn dimensions(&self) -> usize {
            DIMENSIONS
        }

        fn embed(&self, _: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
            Err(EmbedError::Inference("the test gives its vectors".into()))
        }
    }

    /// A unit vector of these weights on the first axes.
    fn vector(weights: &[f32]) -> Embedding {
        let mut vector = vec![0.0; DIMENSIONS];
        vector[..weights.len()].copy_from_slice(weights);
        Embedding::new("given", vector)
    }

    struct Tenant {
        store: Arc<dyn MemoryStore>,
        semantic: Semantic,
        tenant: TenantId,
        _database: TestDatabase,
    }

    impl Tenant {
        async fn new() -> Tenant {
            let database = TestDatabase::new(Backend::Sqlite).await;
            Tenant {
                store: Arc::new(database.store().await),
                semantic: Semantic::new(Arc::new(GivenVectors), None),
                tenant: TenantId::parse("alice").expect("a tenant id"),
                _database: database,
            }
        }

        /// Ingests `content` as the worker does; returns its id and the links `prepare` chose
        /// (the other memory and the description).
        async fn ingest(
            &self,
            content: &str,
            tags: &[&str],
            scope: Option<&str>,
            embedding: Option<Embedding>,
        ) -> (MemoryId, Vec<(MemoryId, String)>) {
            let limits = Limits::default();
            let request = IngestRequest {
                memory: NewMemory {
                    content: content.to_owned(),
                    tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                    category: "general".to_owned(),
                    observed_at: None,
                },
                ingestion_scope: scope.map(str::to_owned),
            };
            self.store
                .enqueue_ingest(&self.tenant, &request, &limits)
                .await
                .expect("queued");
            let job = self
                .store
                .claim_ingest_jobs(Duration::from_secs(60), 1, None, &[])
                .await
                .expect("claimed")
                .pop()
                .expect("a job");
            let prepared = prepare(&self.store, &self.semantic, &job, embedding, &limits)
                .await
                .expect("prepared");
            let links = prepared
                .links
                .iter()
                .map(|l| (l.other, l.description.clone()))
                .collect();
            let result = self
                .store
                .complete_ingest(&job, prepared, &limits)
                .await
                .expect("completed");
            (result.memory_id, links)
        }
    }

    #[tokio::test]
    async fn memories_that_mention_the_same_subject_are_linked_however_unlike() {
        let alice = Tenant::new().await;
        let moved = "I moved from Berlin to Lisbon in March 2024 for a job at a bike startup";
        let (startup, _) = alice
            .ingest(
                "The bike startup where I work builds cargo e-bikes",
                &["work"],
                None,
                Some(vector(&[1.0])),
            )
            .await;
        let (pastry, _) = alice
            .ingest(
                "Lisbon has the best pastel de nata",
                &["food"],
                None,
                Some(vector(&[0.0, 1.0])),
            )
            .await;
        let (cats, links) = alice
            .ingest(
                "Cats sleep most of the day",
                &[],
                None,
                Some(vector(&[0.0, 0.0, 1.0])),
            )
            .await;
        assert!(links.is_empty(), "nothing shared: {links:?}");

        // Unlike in meaning (orthogonal vectors), linked by what both mention.
        let (_, mut links) = alice
            .ingest(moved, &[], None, Some(vector(&[0.0, 0.0, 0.0, 1.0])))
            .await;
        links.sort();
        let mut expected = vec![
            (startup, "both mention the bike startup".to_owned()),
            (pastry, "both mention Lisbon".to_owned()),
        ];
        expected.sort();
        assert_eq!(links, expected);
        assert!(links.iter().all(|(id, _)| *id != cats));

        // A memory linked by similarity is not linked twice; the subject link comes after it.
        let (_, links) = alice
            .ingest(
                "In Lisbon, traffic is easier on cargo e-bikes from the bike startup",
                &[],
                None,
                Some(vector(&[0.6, 0.0, 0.0, 0.0, 0.8])),
            )
            .await;
        assert_eq!(links.len(), 3, "{links:?}");
        assert_eq!(links[0].0, startup, "the similar one first: {links:?}");
        assert_eq!(
            links.iter().filter(|(id, _)| *id == startup).count(),
            1,
            "{links:?}"
        );
        assert!(links.contains(&(pastry, "both mention Lisbon".to_owned())));

        // The scope holds for these links too.
        let (_, links) = alice
            .ingest(
                "Back in Lisbon the bike startup opened a second shop",
                &[],
                Some("^food$"),
                Some(vector(&[0.0, 0.0, 0.0, 0.0, 0.0, 1.0])),
            )
            .await;
        assert_eq!(links, [(pastry, "both mention Lisbon".to_owned())]);

        // Without a vector (the embedder was down), subjects still link.
        let (_, links) = alice
            .ingest("Cargo e-bikes need wide lanes", &[], None, None)
            .await;
        assert!(
            links.contains(&(startup, "both mention the cargo e-bikes".to_owned())),
            "{links:?}"
        );
    }
}
