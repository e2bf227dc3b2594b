//! Fair shares of what every tenant uses at once: CPU-heavy work ([`CpuPool`], over
//! `membrain-fair`'s gate) and request rate and concurrency ([`TenantLimiter`]).
//!
//! One process serves every tenant, so a tenant that sends the heaviest requests the API allows,
//! as fast as it can, must not slow the others: each tenant may hold only part of the CPU pool,
//! waits in its own bounded queue, and is held to a request rate and a number of requests in
//! flight. Past a bound the answer is immediate (503 or 429 with `Retry-After`), never an
//! unbounded queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use membrain_fair::{FairGate, FairShares, Refusal};
use membrain_memory::TenantId;
// tokio's clock, so tests can pause and advance it; outside tests it is the monotonic clock.
use tokio::time::Instant;

use crate::error::ApiError;
use crate::extract::JsonBody;

/// Bounds of [`CpuPool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuPoolSettings {
    /// CPU-heavy jobs running at once, over all tenants; one tenant may run half of them.
    pub threads: usize,
    /// Jobs waiting, over all tenants (one tenant may take half the queue); more are answered
    /// 503 at once.
    pub queued: usize,
    /// Longest a job waits for a thread before it is answered 503.
    pub queue_timeout: Duration,
}

impl Default for CpuPoolSettings {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queued: 64,
            queue_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs CPU-heavy closures (ranking with the caller's filters, regexes over tags) on blocking
/// threads, admitted by a [`FairGate`]: at most `threads` at once, at most half of them for one
/// tenant, and at low OS priority for a tenant that used more than its part lately.
#[derive(Debug)]
pub struct CpuPool {
    gate: Arc<FairGate>,
    queue_timeout: Duration,
}

impl CpuPool {
    pub fn new(settings: CpuPoolSettings) -> Self {
        Self {
            gate: FairGate::new(FairShares {
                slots: settings.threads,
                queued: settings.queued,
            }),
            queue_timeout: settings.queue_timeout,
        }
    }

    /// The gate that admits this pool's work, for other heavy work of the process to share
    /// (time-series reads in the API).
    pub fn gate(&self) -> &Arc<FairGate> {
        &self.gate
    }

    /// Runs `work` for `tenant` on a blocking thread once the tenant's share and the pool allow
    /// (at low OS priority when the tenant used more than its part lately).
    pub async fn run<T, F>(&self, tenant: &TenantId, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self.admit(tenant).await?;
        self.gate.run_blocking(tenant, work).await.map_err(failed)
    }

    /// `value` serialised as the answer's JSON in `tenant`'s share of the pool: an answer that
    /// carries memories with their histories can be megabytes, too much to write out on the
    /// runtime threads every tenant's requests share.
    pub async fn json<T>(&self, tenant: &TenantId, value: T) -> Result<JsonBody, ApiError>
    where
        T: serde::Serialize + Send + 'static,
    {
        let body = self
            .run(tenant, move || serde_json::to_vec(&value))
            .await?
            .map_err(|e| ApiError::internal(&e))?;
        Ok(JsonBody(body))
    }

    async fn admit(&self, tenant: &TenantId) -> Result<membrain_fair::FairPermit, ApiError> {
        match tokio::time::timeout(self.queue_timeout, self.gate.admit(tenant)).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(Refusal::TenantQueueFull { waiting, .. })) => Err(ApiError::busy(format!(
                "this API key already has {waiting} heavy requests waiting; wait for them to \
                 finish before sending more"
            ))),
            Ok(Err(Refusal::QueueFull { .. })) => Err(ApiError::busy(
                "the server is busy with heavy requests; retry in a second",
            )),
            Ok(Err(Refusal::Closed)) => Err(ApiError::busy("the server is shutting down")),
            Err(_) => Err(ApiError::busy(format!(
                "the server is busy: no CPU was free within {} s",
                self.queue_timeout.as_secs()
            ))),
        }
    }
}

/// A CPU task that panicked: a bug, answered as internal.
fn failed(error: membrain_fair::WorkFailed) -> ApiError {
    tracing::error!(%error, "a CPU task failed");
    ApiError::internal(&error)
}

/// Bounds of [`TenantLimiter`].
#[derive(Debug, Clone, PartialEq)]
pub struct TenantLimits {
    /// Sustained requests per second per tenant.
    pub requests_per_second: f64,
    /// Requests a tenant may send at once above the sustained rate.
    pub burst: u32,
    /// Requests of one tenant in flight at once.
    pub max_in_flight: usize,
}

impl Default for TenantLimits {
    fn default() -> Self {
        Self {
            requests_per_second: 100.0,
            burst: 200,
            max_in_flight: 32,
        }
    }
}

/// Buckets no one has used lately are forgotten once the map grows past this.
const FORGET_BUCKETS_ABOVE: usize = 4_096;

/// Per-tenant request rate (a token bucket) and requests in flight.
#[derive(Debug)]
pub struct TenantLimiter {
    limits: TenantLimits,
    tenants: Mutex<HashMap<TenantId, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    in_flight: Arc<AtomicUsize>,
}

/// Held while a request runs; lets the next one in when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TenantLimiter {
    pub fn new(limits: TenantLimits) -> Self {
        Self {
            limits,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `tenant`, or says (429) how long to wait.
    pub fn admit(&self, tenant: &TenantId) -> Result<InFlight, ApiError> {
        let now = Instant::now();
        let mut tenants = self
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tenants.len() > FORGET_BUCKETS_ABOVE {
            let (rate, burst) = (
                self.limits.requests_per_second,
                f64::from(self.limits.burst),
            );
            // A bucket that has refilled and has nothing in flight is the same as a new one.
            tenants.retain(|_, bucket| {
                bucket.in_flight.load(Ordering::Acquire) > 0
                    || bucket.tokens + now.duration_since(bucket.refilled).as_secs_f64() * rate
                        < burst
            });
        }
        let bucket = tenants.entry(tenant.clone()).or_insert_with(|| Bucket {
            tokens: f64::from(self.limits.burst),
            refilled: now,
            in_flight: Arc::new(AtomicUsize::new(0)),
        });
        let rate = self.limits.requests_per_second;
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.refilled).as_secs_f64() * rate)
            .min(f64::from(self.limits.burst));
        bucket.refilled = now;
        if bucket.tokens < 1.0 {
            let wait = ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64;
            return Err(ApiError::rate_limited(
                format!(
                    "this API key sent more than {} requests per second (bursts up to {}); slow \
                     down and retry after {wait} s",
                    self.limits.requests_per_second, self.limits.burst
                ),
                wait,
            ));
        }
        if bucket.in_flight.load(Ordering::Acquire) >= self.limits.max_in_flight {
            return Err(ApiError::rate_limited(
                format!(
                    "this API key already has {} requests in flight; wait for answers before \
                     sending more",
                    self.limits.max_in_flight
                ),
                1,
            ));
        }
        bucket.tokens -= 1.0;
        bucket.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok(InFlight(bucket.in_flight.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_tenant_past_its_rate_waits_and_others_do_not() {
        let limiter = TenantLimiter::new(TenantLimits {
            requests_per_second: 2.0,
            burst: 3,
            max_in_flight: 100,
        });
        let (a, b) = (tenant("a"), tenant("b"));
        for _ in 0..3 {
            drop(limiter.admit(&a).unwrap());
        }
        let refused = limiter.admit(&a).unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after, Some(1));
        assert!(
            limiter.admit(&b).is_ok(),
            "another tenant has its own bucket"
        );
        // Half a second refills one token at two per second.
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(limiter.admit(&a).is_ok());
    }

    #[test]
    fn requests_in_flight_are_bounded_per_tenant() {
        let limiter = TenantLimiter::new(TenantLimits {
            requests_per_second: 1000.0,
            burst: 1000,
            max_in_flight: 2,
        });
        let a = tenant("a");
        let first = limiter.admit(&a).unwrap();
        let _second = limiter.admit(&a).unwrap();
        assert!(limiter.admit(&a).is_err());
        drop(first);
        assert!(limiter.admit(&a).is_ok());
    }

    #[tokio::test]
    async fn one_tenant_cannot_take_every_thread() {
        let pool = Arc::new(CpuPool::new(CpuPoolSettings {
            threads: 2,
            queued: 2,
            queue_timeout: Duration::from_secs(30),
        }));
        let (a, b) = (tenant("a"), tenant("b"));
        // Tenant a's first job holds its one thread until released; its second waits; its third
        // is refused at once.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let (pool, a) = (pool.clone(), a.clone());
            async move { pool.run(&a, move || hold.recv().is_ok()).await }
        });
        while pool.gate.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let (pool, a) = (pool.clone(), a.clone());
            async move { pool.run(&a, || true).await }
        });
        while pool.gate.waiting(&a) == 0 {
            tokio::task::yield_now().await;
        }
        let third = pool.run(&a, || true).await.unwrap_err();
        assert_eq!(third.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(third.retry_after, Some(1));
        // Tenant b still finds the other thread while a's first job runs.
        assert!(pool.run(&b, || true).await.unwrap());
        release.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
        assert!(second.await.unwrap().unwrap());
    }
}
