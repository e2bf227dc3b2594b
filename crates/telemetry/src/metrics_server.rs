//! The process's Prometheus recorder and the listener that serves it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use membrain_http::HttpLimits;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Latency buckets, in seconds: from a cached key check (sub-millisecond) to a slow ingest job.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Embedding batch sizes: one query up to the ingest and backfill batches.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The recorder is process-wide (the `metrics` facade has one), so is its handle: `serve` runs
/// both servers in one process and installs once.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTALLING: Mutex<()> = Mutex::new(());

/// Whether metrics may carry a `tenant` label. Off unless the operator turned it on: tenant
/// names are the operator's customers, and a label per tenant multiplies every series.
static TENANT_LABELS: AtomicBool = AtomicBool::new(false);

/// Whether per-tenant labels are on (`--metrics-tenant-labels`).
pub fn tenant_labels() -> bool {
    TENANT_LABELS.load(Ordering::Relaxed)
}

/// Installs the Prometheus recorder (once per process; later calls return the same handle and
/// only update `tenant_labels`). Every `…_seconds` metric is a histogram with
/// [`LATENCY_BUCKETS`], `membrain_embedding_batch_size` one with [`BATCH_BUCKETS`].
pub fn install_recorder(tenant_labels: bool) -> Result<PrometheusHandle, BuildError> {
    TENANT_LABELS.store(tenant_labels, Ordering::Relaxed);
    // One installer at a time: a second would find the global recorder taken and fail.
    let _installing = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full("membrain_embedding_batch_size".to_owned()),
            &BATCH_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// The HELP lines of every metric Membrain records (README.md lists the same names).
pub fn describe() {
    describe_counter!(
        "membrain_http_requests_total",
        "HTTP requests answered, by server, route template, method and status"
    );
    describe_histogram!(
        "membrain_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency, by server, route template and method"
    );
    describe_counter!(
        "membrain_mcp_tool_calls_total",
        "MCP tool calls, by tool and outcome (ok, error, invalid_arguments, unknown_tool, failed)"
    );
    describe_histogram!(
        "membrain_mcp_tool_call_duration_seconds",
        Unit::Seconds,
        "MCP tool call latency, by tool"
    );
    describe_gauge!(
        "membrain_ingest_queue_depth",
        "Ingest jobs queued and not yet claimed (all tenants), as the last worker claim saw them"
    );
    describe_histogram!(
        "membrain_ingest_job_latency_seconds",
        Unit::Seconds,
        "Time from an ingest job's enqueueing to its completion"
    );
    describe_counter!(
        "membrain_ingest_jobs_total",
        "Ingest jobs finished, by outcome (completed, failed)"
    );
    describe_histogram!(
        "membrain_embedding_duration_seconds",
        Unit::Seconds,
        "Time to embed one batch, by lane (request, ingest, backfill)"
    );
    describe_histogram!(
        "membrain_embedding_batch_size",
        "Texts per embedding batch, by lane"
    );
    describe_histogram!(
        "membrain_search_duration_seconds",
        Unit::Seconds,
        "Search time by phase: embed (the query vector), rank (index catch-up and ranking), load (memories and the answer)"
    );
    describe_gauge!(
        "membrain_index_memory_bytes",
        Unit::Bytes,
        "Bytes held by the per-tenant search indexes"
    );
    describe_gauge!(
        "membrain_index_tenants",
        "Tenants whose search index is in memory"
    );
    describe_counter!(
        "membrain_key_cache_hits_total",
        "API key checks answered from the cache"
    );
    describe_counter!(
        "membrain_key_cache_misses_total",
        "API key checks that asked the key source"
    );
    describe_counter!(
        "membrain_ts_writes_total",
        "Time-series write requests, by outcome (ok, rejected, failed)"
    );
    describe_counter!(
        "membrain_ts_records_written_total",
        "Time-series records accepted"
    );
    describe_counter!(
        "membrain_ts_reads_total",
        "Time-series reads, by kind (latest, range, query) and outcome (ok, failed)"
    );
    describe_histogram!(
        "membrain_ts_read_duration_seconds",
        Unit::Seconds,
        "Time-series read latency, by kind"
    );
    describe_gauge!(
        "membrain_db_pool_connections",
        "Database pool connections by pool and state (in_use, idle), sampled when scraped"
    );
    describe_gauge!(
        "membrain_db_pool_max_connections",
        "Most connections each database pool may open"
    );
}

/// Called before every scrape, so gauges that are cheap to read but not worth updating on every
/// change (database pools) are current when Prometheus reads them.
pub type Sampler = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
struct Exposition {
    handle: PrometheusHandle,
    samplers: Arc<Vec<Sampler>>,
}

/// The `/metrics` listener: its own small router on its own address, served through
/// `membrain-http` with its usual limits.
pub struct MetricsServer {
    listener: TcpListener,
    exposition: Exposition,
}

/// How often histograms are drained into their buckets when nobody scrapes (the exporter keeps
/// recent samples in memory until then).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

impl MetricsServer {
    /// Binds `address` (port 0 picks one) for `handle`'s metrics.
    pub async fn bind(address: SocketAddr, handle: PrometheusHandle) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(address).await?,
            exposition: Exposition {
                handle,
                samplers: Arc::new(Vec::new()),
            },
        })
    }

    /// Runs `sampler` before every scrape.
    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        let mut samplers = Vec::clone(&self.exposition.samplers);
        samplers.push(sampler);
        self.exposition.samplers = Arc::new(samplers);
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The router: `GET /metrics` and nothing else.
    fn router(exposition: Exposition) -> Router {
        Router::new()
            .route("/metrics", get(scrape))
            .with_state(exposition)
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let handle = self.exposition.handle.clone();
        let upkeep_stop = shutdown.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tokio::select! {
                    _ = upkeep_stop.cancelled() => return,
                    _ = ticks.tick() => handle.run_upkeep(),
                }
            }
        });
        membrain_http::serve(
            self.listener,
            Self::router(self.exposition),
            HttpLimits::default(),
            shutdown,
            Duration::from_secs(1),
        )
        .await
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    }
}

async fn scrape(State(exposition): State<Exposition>) -> Response {
    for sampler in exposition.samplers.iter() {
        sampler();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        exposition.handle.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn histograms_have_buckets_and_samplers_run_before_a_scrape() {
        let handle = install_recorder(false).expect("the recorder installs");
        metrics::histogram!("membrain_test_duration_seconds", "phase" => "x").record(0.003);
        let exposition = Exposition {
            handle,
            samplers: Arc::new(vec![Arc::new(|| {
                metrics::gauge!("membrain_db_pool_max_connections", "database" => "memories", "pool" => "shared")
                    .set(10.0);
            })]),
        };
        let response = MetricsServer::router(exposition)
            .oneshot(
                axum::http::Request::get("/metrics")
                    .body(axum::body::Body::empty())
                    .expect("a request"),
            )
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("the body");
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(r#"membrain_test_duration_seconds_bucket{phase="x",le="0.005"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"membrain_db_pool_max_connections{database="memories",pool="shared"} 10"#
            ),
            "{text}"
        );
    }
}
