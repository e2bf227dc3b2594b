//! Building and running the REST service: settings, shared state, the router and its layers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware;
use axum::routing::{delete, get, post, put};
use membrain_auth::{ApiKey, KeyHash, KeyResolver};
use membrain_http::HttpLimits;
use membrain_memory::Limits;
use membrain_store::MemoryStore;
use membrain_ts_service::TimeSeriesService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::fair::{CpuPool, CpuPoolSettings, TenantLimiter, TenantLimits};
use crate::ingest::{IngestTeam, IngestWorker};
use crate::keys::{require_key, require_operator};
use crate::maintenance::{Maintenance, Retention};
use crate::routes;
use crate::semantic::Semantic;
use crate::semantic::backfill::Backfill;

/// Everything the REST service can be told.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub listen: SocketAddr,
    pub limits: Limits,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a worker owns a claimed ingest job before another may take it over.
    pub job_lease: Duration,
    /// How often idle workers look for jobs queued by other processes.
    pub job_poll_interval: Duration,
    /// Ingest workers in this process (0: this process only answers requests).
    pub ingest_workers: usize,
    /// How long a key check is remembered.
    pub key_cache_ttl: Duration,
    /// How long shutdown waits for in-flight requests and the current ingest job.
    pub shutdown_grace: Duration,
    /// The pool CPU-heavy request work runs in, with each tenant's share.
    pub cpu: CpuPoolSettings,
    /// Each tenant's request rate and requests in flight.
    pub tenant_limits: TenantLimits,
    /// How long finished jobs and tombstones are kept.
    pub retention: Retention,
    /// Bytes the per-tenant search indexes may hold together ([`Semantic::for_settings`]).
    pub index_memory_budget: usize,
    /// Timeouts and caps of the HTTP server.
    pub http: HttpLimits,
    /// The key that may administer keys (`/api/v1/admin/keys`); it is no tenant's key. `None`
    /// turns key administration off.
    pub operator_key: Option<ApiKey>,
    /// The key of a trusted service (the MCP bridge serving OAuth callers) that names, in
    /// `X-Membrain-Tenant`, the tenant each call is made for; no other key may name one. `None`:
    /// no call names its tenant.
    pub service_key: Option<ApiKey>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            limits: Limits::default(),
            max_body_bytes: 1024 * 1024,
            job_lease: Duration::from_secs(30),
            job_poll_interval: Duration::from_millis(500),
            // Two, so one batch is embedded while the other is written.
            ingest_workers: 2,
            key_cache_ttl: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(20),
            cpu: CpuPoolSettings::default(),
            tenant_limits: TenantLimits::default(),
            retention: Retention::default(),
            index_memory_budget: crate::SemanticTuning::default().index_memory_budget,
            http: HttpLimits::default(),
            operator_key: None,
            service_key: None,
        }
    }
}

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn MemoryStore>,
    pub keys: Arc<dyn KeyResolver>,
    pub limits: Arc<Limits>,
    /// The ingest workers: a queued job wakes a free one.
    pub ingest: Arc<IngestTeam>,
    /// The embedder, the optional language model and the per-tenant search indexes.
    pub semantic: Arc<Semantic>,
    /// The time-series store and its limits; `None` when this API serves memories only.
    pub timeseries: Option<Arc<TimeSeriesService>>,
    /// Where CPU-heavy request work runs, a fair share per tenant.
    pub cpu: Arc<CpuPool>,
    /// Each tenant's request rate and requests in flight.
    pub tenant_limiter: Arc<TenantLimiter>,
    /// The operator key's hash ([`ApiSettings::operator_key`]).
    pub operator_key: Option<KeyHash>,
    /// The service key's hash ([`ApiSettings::service_key`]).
    pub service_key: Option<KeyHash>,
}

impl AppState {
    /// The state of one API process: the store, the key source and the embedder, with the
    /// limits, CPU pool and per-tenant limiter `settings` configure. No time series until
    /// [`ApiServer::with_time_series`] (or a test) sets them.
    pub fn new(
        store: Arc<dyn MemoryStore>,
        keys: Arc<dyn KeyResolver>,
        semantic: Arc<Semantic>,
        settings: &ApiSettings,
    ) -> Self {
        Self {
            store,
            keys,
            limits: Arc::new(settings.limits.clone()),
            ingest: Arc::default(),
            cpu: semantic.cpu().clone(),
            semantic,
            timeseries: None,
            tenant_limiter: Arc::new(TenantLimiter::new(settings.tenant_limits.clone())),
            operator_key: settings.operator_key.as_ref().map(ApiKey::hash),
            service_key: settings.service_key.as_ref().map(ApiKey::hash),
        }
    }
}

/// The REST router with all its layers, without a socket (tests call it directly).
pub fn router(state: AppState, settings: &ApiSettings) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .route(
            "/memories",
            post(routes::memories::add_memory).get(routes::memories::list_memories),
        )
        .route("/memories/jobs/{job_id}", get(routes::memories::ingest_job))
        .route("/memories/search", post(routes::search::search_memories))
        .route("/memories/batch", post(routes::memories::get_memories))
        .route("/memories/bulk", delete(routes::memories::delete_memories))
        .route("/memories/link", post(routes::graph::link_memories))
        .route("/memories/unlink", post(routes::graph::unlink_memories))
        .route(
            "/memories/{memory_id}",
            put(routes::memories::update_memory).get(routes::memories::get_memory),
        )
        .route("/stats", get(routes::stats::stats))
        .route("/auth/whoami", get(routes::health::whoami))
        .route("/graph/path", get(routes::graph::find_path))
        .route("/graph/neighborhood", get(routes::graph::neighborhood))
        .route("/graph/traverse", get(routes::graph::traverse))
        .route("/ts/tables", get(routes::timeseries::list_tables))
        .route(
            "/ts/tables/{database}/{table}",
            get(routes::timeseries::describe_table).delete(routes::timeseries::drop_table),
        )
        .route(
            "/ts/tables/{database}/{table}/retention",
            put(routes::timeseries::set_retention),
        )
        .route(
            "/ts/tables/{database}/{table}/records",
            post(routes::timeseries::write_records),
        )
        .route(
            "/ts/tables/{database}/{table}/latest",
            post(routes::timeseries::latest),
        )
        .route(
            "/ts/tables/{database}/{table}/range",
            post(routes::timeseries::range),
        )
        .route("/ts/query", post(routes::timeseries::query))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key))
        // The operator's routes: behind the operator key instead of a tenant's.
        .merge(
            Router::new()
                .route(
                    "/admin/keys",
                    get(routes::admin::list_keys).post(routes::admin::create_key),
                )
                .route(
                    "/admin/keys/{key_id}/revoke",
                    post(routes::admin::revoke_key),
                )
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    require_operator,
                )),
        );

    Router::new()
        .route("/health", get(routes::health::health))
        .route("/ready", get(routes::health::ready))
        .nest("/api/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // Counted by route template (`MatchedPath`), so it wraps the routes, not the router.
        .layer(middleware::from_fn_with_state(
            membrain_telemetry::ServerName("api"),
            membrain_telemetry::record_request,
        ))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server hit a bug; it has been logged",
            )
            .into_response_logged()
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: query strings may carry user content, headers carry keys.
                let span = tracing::info_span!(
                    "http",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %request_id,
                    tenant = tracing::field::Empty,
                    trace_id = tracing::field::Empty,
                );
                // A caller's W3C `traceparent` (the bridge sends its own) makes this request's
                // span, and every span under it, part of the caller's trace.
                membrain_telemetry::continue_trace(&span, request.headers());
                membrain_telemetry::record_trace_id(&span);
                span
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

impl ApiError {
    fn into_response_logged(self) -> axum::response::Response {
        tracing::error!("a handler panicked");
        axum::response::IntoResponse::into_response(self)
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "no such route: the Memory API lives under /api/v1 (POST /api/v1/memories, \
         POST /api/v1/memories/search, GET /api/v1/stats, …)",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that HTTP method",
    )
}

/// A bound, ready-to-run REST service with its ingest workers.
pub struct ApiServer {
    listener: TcpListener,
    state: AppState,
    settings: ApiSettings,
    workers: Vec<IngestWorker>,
    backfill: Option<Backfill>,
    maintenance: Option<Maintenance>,
    shutdown_grace: Duration,
    /// Served beside the API on its port (the web console), outside the API's own layers.
    extra_routes: Router,
}

impl ApiServer {
    /// Binds the listener (port 0 picks a free port) and prepares the workers.
    pub async fn bind(
        settings: &ApiSettings,
        store: Arc<dyn MemoryStore>,
        keys: Arc<dyn KeyResolver>,
        semantic: Semantic,
    ) -> std::io::Result<Self> {
        let semantic = Arc::new(semantic);
        let state = AppState::new(store.clone(), keys, semantic.clone(), settings);
        let workers = (0..settings.ingest_workers)
            .map(|_| {
                IngestWorker::new(
                    store.clone(),
                    semantic.clone(),
                    state.ingest.clone(),
                    settings.job_lease,
                    settings.job_poll_interval,
                    state.limits.clone(),
                )
            })
            .collect();
        // Vectors are (re)made where ingest runs: a read-only API task only searches.
        let backfill = (settings.ingest_workers > 0).then(|| {
            Backfill::new(
                store.clone(),
                semantic.clone(),
                settings.job_poll_interval * 10,
            )
        });
        // Pruning runs where ingest runs: a read-only API task changes nothing.
        let maintenance = (settings.ingest_workers > 0)
            .then(|| Maintenance::new(store.clone(), settings.retention.clone()));
        let listener = TcpListener::bind(settings.listen).await?;
        Ok(Self {
            listener,
            state,
            settings: settings.clone(),
            workers,
            backfill,
            maintenance,
            shutdown_grace: settings.shutdown_grace,
            extra_routes: Router::new(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves the time-series routes (`/api/v1/ts/…`) over `service`.
    ///
    /// Its reads are admitted by this API's CPU pool (with the service's read deadline): a
    /// `ts_query` scan is CPU work like ranking, and a tenant's share of the cores must count
    /// both, or a tenant running both at once would hold twice its share.
    pub fn with_time_series(mut self, service: Arc<TimeSeriesService>) -> Self {
        let reads = membrain_ts_service::ReadGate::sharing(
            service.read_settings().clone(),
            self.state.cpu.gate().clone(),
        );
        let service = TimeSeriesService::clone(&service).with_read_gate(reads);
        self.state.timeseries = Some(Arc::new(service));
        self
    }

    /// Also serves `routes` on this port (`membrain-console`'s `/console`): they must not
    /// overlap the API's paths nor set a fallback of their own at the root.
    /// Their requests are counted in the request metrics as server `console`.
    pub fn with_routes(mut self, routes: Router) -> Self {
        let counted = routes.layer(middleware::from_fn_with_state(
            membrain_telemetry::ServerName("console"),
            membrain_telemetry::record_request,
        ));
        self.extra_routes = self.extra_routes.merge(counted);
        self
    }

    /// This server's router without its socket, sharing its state (keys, limits, pools): for a
    /// bridge in the same process (`membrain serve`), whose calls then meet the same checks and
    /// per-tenant limits as calls over HTTP.
    pub fn router(&self) -> Router {
        router(self.state.clone(), &self.settings)
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests and the current ingest
    /// job finish (up to the grace period). Unfinished jobs stay queued for the next start.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        // Checked before the workers start: serving fails only on invalid limits.
        self.settings
            .http
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut worker_tasks = Vec::new();
        for worker in self.workers {
            worker_tasks.push(tokio::spawn(worker.run(shutdown.clone())));
        }
        if let Some(backfill) = self.backfill {
            worker_tasks.push(tokio::spawn(backfill.run(shutdown.clone())));
        }
        if let Some(maintenance) = self.maintenance {
            worker_tasks.push(tokio::spawn(maintenance.run(shutdown.clone())));
        }
        let grace = self.shutdown_grace;
        let serve = membrain_http::serve(
            self.listener,
            router(self.state, &self.settings).merge(self.extra_routes),
            self.settings.http.clone(),
            shutdown.clone(),
            grace,
        );
        // The workers stop on the same signal as the server, so both drain within one grace
        // period.
        let drain_workers = async {
            shutdown.cancelled().await;
            let drained = tokio::time::timeout(grace, async {
                for task in worker_tasks {
                    let _ = task.await;
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    "ingest workers did not stop within the grace period; their jobs will resume on restart"
                );
            }
        };
        let (served, ()) = tokio::join!(serve, drain_workers);
        served.map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    }
}
