//! The MCP server over Streamable HTTP at `/mcp`, stateless, with the checks that must happen
//! before rmcp sees a request, in this order:
//!
//! 1. `Host` and `Origin` against the configured allow-lists (403), so a browser page on another
//!    site cannot drive a local server (DNS rebinding);
//! 2. the caller's key, checked with the API or the key source (401; 503 when it cannot be
//!    checked) before any tool is listed or run, and before the body is read: a caller without a
//!    valid key never makes the server wait for, or hold, a body. With OAuth on
//!    ([`McpOAuth`]), a bearer token shaped like a JWT is an access token instead, checked
//!    against the issuer's keys; its tenant is served through the bridge's own service key
//!    (the token is never passed on), and every 401 says where the resource metadata is
//!    (`WWW-Authenticate: Bearer resource_metadata=…`, RFC 9728), served unauthenticated at the
//!    well-known path;
//! 3. the body: at most `max_body_bytes` (413), and a single JSON-RPC 2.0 message (400 with a
//!    JSON-RPC error object), because rmcp answers malformed input with a bare 415.
//!
//! Every JSON-RPC error answered to a request whose `id` could be read carries that `id`
//! (2026-07-28, SEP-2575), also when rmcp refuses the request at the HTTP level (a missing
//! `Accept` or `Content-Type`), where it would answer `"id": null`.
//!
//! [`McpServer`] serves the router through `membrain-http`, with its timeouts and caps.
//!
//! Every request is answered statelessly (no `Mcp-Session-Id`), so any task behind the load
//! balancer can serve any request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use membrain_auth::{CachedKeys, KeyResolver, key_from_headers};
use membrain_http::HttpLimits;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::api_client::{InProcessApi, MemoryApi, MemoryApiClient};
use crate::key_check::ApiKeyCheck;
use crate::tools::{ActingFor, CallerKey, MembrainTools};
use crate::ts_tools::CallerTenant;
use membrain_ts_service::TimeSeriesService;

/// Everything the MCP HTTP server can be told.
#[derive(Debug, Clone)]
pub struct McpSettings {
    pub listen: SocketAddr,
    /// The Memory REST API root, e.g. `http://127.0.0.1:8000`.
    pub api_base_url: String,
    /// `Host` values accepted.
    pub allowed_hosts: AllowedHosts,
    /// `Origin` values accepted from browsers (`scheme://host[:port]`; without a port, any port).
    /// Requests without an `Origin` header (every non-browser client) are not affected; with an
    /// empty list no browser page may call the server.
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    /// How long the bridge waits for one API call.
    pub api_timeout: Duration,
    /// How long a key check is remembered.
    pub key_cache_ttl: Duration,
    /// Timeouts and caps of the HTTP server. `request_timeout` also bounds how long
    /// `add_memory` waits for its ingest job (see [`MembrainTools::with_ingest_wait`]).
    pub http: HttpLimits,
    /// OAuth access tokens beside API keys; `None` (the default): API keys only.
    pub oauth: Option<McpOAuth>,
}

/// OAuth for hosted clients that cannot send an API key header: access tokens from one issuer,
/// checked here, their tenant served with the bridge's own service key.
#[derive(Debug, Clone)]
pub struct McpOAuth {
    pub validator: membrain_oauth::TokenValidator,
    /// The key this bridge calls the REST API with for a token's tenant (the API's
    /// `MEMBRAIN_SERVICE_KEY`). Needed when the tools call the API; the gateway profile, which
    /// serves the tenant's time series itself, has no use for it.
    pub service_key: Option<membrain_auth::ApiKey>,
}

impl McpSettings {
    pub fn local_origins() -> Vec<String> {
        vec![
            "http://localhost".into(),
            "http://127.0.0.1".into(),
            "https://localhost".into(),
        ]
    }
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8100)),
            api_base_url: "http://127.0.0.1:8000".into(),
            allowed_hosts: AllowedHosts::local(),
            allowed_origins: Self::local_origins(),
            max_body_bytes: 1024 * 1024,
            api_timeout: Duration::from_secs(30),
            key_cache_ttl: Duration::from_secs(5),
            http: HttpLimits::default(),
            oauth: None,
        }
    }
}

/// The `Host` values the server answers. There is no "off": an empty list allows no host, and
/// accepting any host takes an explicit [`AllowedHosts::Any`] (configured as `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHosts {
    /// Any `Host`: for deployments where the load balancer in front checks it.
    Any,
    /// These names, lower-case; `host[:port]` matches an entry exactly, or by name when the
    /// entry has no port.
    List(Vec<String>),
}

/// Why a configured list of allowed hosts cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllowedHostsError {
    #[error(
        "no host is listed: list the names clients use to reach this server, comma-separated \
         (the load balancer's public name, e.g. mcp.example.com, or localhost), or `*` to accept \
         any Host when the load balancer in front checks it"
    )]
    Empty,
    #[error("`*` accepts every host on its own: use either `*` or a list of names, not both")]
    WildcardWithNames,
}

impl AllowedHosts {
    /// What a server on this machine is reached by.
    pub fn local() -> Self {
        Self::List(vec![
            "localhost".into(),
            "127.0.0.1".into(),
            "[::1]".into(),
            "::1".into(),
        ])
    }

    /// From configured entries (blank ones are ignored): `*` alone is [`AllowedHosts::Any`];
    /// no entry at all is refused rather than taken to mean "any".
    pub fn parse<S: AsRef<str>>(
        entries: impl IntoIterator<Item = S>,
    ) -> Result<Self, AllowedHostsError> {
        let entries: Vec<String> = entries
            .into_iter()
            .map(|entry| entry.as_ref().trim().to_lowercase())
            .filter(|entry| !entry.is_empty())
            .collect();
        match entries.as_slice() {
            [] => Err(AllowedHostsError::Empty),
            [only] if only == "*" => Ok(Self::Any),
            _ if entries.iter().any(|entry| entry == "*") => {
                Err(AllowedHostsError::WildcardWithNames)
            }
            _ => Ok(Self::List(entries)),
        }
    }

    /// Whether a request's `Host` header value is allowed.
    pub fn allows(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::List(allowed) => host_allowed(host, allowed),
        }
    }
}

#[derive(Clone)]
struct Gate {
    keys: Arc<dyn KeyResolver>,
    allowed_hosts: Arc<AllowedHosts>,
    allowed_origins: Arc<Vec<String>>,
    max_body_bytes: usize,
    oauth: Option<Arc<McpOAuth>>,
}

/// What the MCP server answers from, and who checks keys.
#[derive(Clone, Default)]
pub enum McpBackend {
    /// `alb` profile (and `serve`): every tool calls the REST API at `api_base_url` with the
    /// caller's key; the API says whose key it is.
    #[default]
    Api,
    /// `serve`: every tool calls the REST API's router in this process (the API's own router,
    /// passed here), with the caller's key, as [`McpBackend::Api`] would over HTTP.
    InProcess(axum::Router),
    /// `gateway` profile (seed 001): the `ts_*` tools read and write the time-series store in
    /// this process; keys come from a local key source (environment, file or Secrets Manager).
    Direct {
        time_series: Arc<TimeSeriesService>,
        keys: Arc<dyn KeyResolver>,
    },
}

impl std::fmt::Debug for McpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api => f.write_str("Api"),
            Self::InProcess(_) => f.write_str("InProcess"),
            Self::Direct { time_series, .. } => write!(f, "Direct({time_series:?})"),
        }
    }
}

/// The MCP router without a socket (`alb` profile): `/mcp` and `/health`.
pub fn router(settings: &McpSettings, shutdown: CancellationToken) -> Result<Router, String> {
    router_with(settings, McpBackend::Api, shutdown)
}

/// The MCP router without a socket, over either backend.
pub fn router_with(
    settings: &McpSettings,
    backend: McpBackend,
    shutdown: CancellationToken,
) -> Result<Router, String> {
    let bridge = |api: Arc<dyn MemoryApi>| -> (Arc<dyn KeyResolver>, MembrainTools) {
        let keys = Arc::new(CachedKeys::new(
            Arc::new(ApiKeyCheck::new(api.clone())),
            settings.key_cache_ttl,
        ));
        let tools = MembrainTools::new(api, None)
            .with_ingest_wait(ingest_wait(settings.http.request_timeout));
        (keys, tools)
    };
    let calls_api = !matches!(backend, McpBackend::Direct { .. });
    if let Some(oauth) = &settings.oauth
        && calls_api
        && oauth.service_key.is_none()
    {
        return Err(
            "OAuth needs the service key this bridge calls the REST API with for a token's \
             tenant: set MEMBRAIN_SERVICE_KEY here and on the API"
                .to_owned(),
        );
    }
    let (keys, tools): (Arc<dyn KeyResolver>, MembrainTools) = match backend {
        McpBackend::Api => bridge(Arc::new(MemoryApiClient::new(
            &settings.api_base_url,
            settings.api_timeout,
        )?)),
        McpBackend::InProcess(router) => {
            bridge(Arc::new(InProcessApi::new(router, settings.api_timeout)))
        }
        McpBackend::Direct { time_series, keys } => {
            (keys, MembrainTools::time_series_only(time_series))
        }
    };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        // Host and Origin are checked by `gate` below, with JSON answers and one configuration.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(shutdown.child_token());
    let service = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let gate = Gate {
        keys,
        allowed_hosts: Arc::new(match &settings.allowed_hosts {
            AllowedHosts::Any => AllowedHosts::Any,
            AllowedHosts::List(hosts) => {
                AllowedHosts::List(hosts.iter().map(|h| h.to_lowercase()).collect())
            }
        }),
        allowed_origins: Arc::new(
            settings
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_lowercase())
                .collect(),
        ),
        max_body_bytes: settings.max_body_bytes,
        oauth: settings.oauth.clone().map(Arc::new),
    };
    // Layers run outermost-last: Host and Origin first, then the key, then the body, so a caller
    // without a valid key never has its body read.
    let mcp = Router::new()
        .route_service("/mcp", service)
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn_with_state(gate.clone(), check_body))
        .layer(middleware::from_fn_with_state(gate.clone(), check_key))
        .layer(middleware::from_fn_with_state(gate, check_host_and_origin));
    let mut router = Router::new().route("/health", get(health));
    if let Some(oauth) = &settings.oauth {
        router = router.merge(resource_metadata_routes(&oauth.validator)?);
    }
    Ok(router
        .merge(mcp)
        .fallback(|| async {
            http_error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route: MCP is served at /mcp",
            )
        })
        .method_not_allowed_fallback(|| async {
            http_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that HTTP method (MCP: POST /mcp; health: GET /health)",
            )
        })
        // Inside the request's span: the tools find it there (rmcp runs them in other tasks).
        .layer(middleware::from_fn(
            membrain_telemetry::remember_request_span,
        ))
        // Counted by route template (`MatchedPath`), so it wraps the routes, not the router.
        .layer(middleware::from_fn_with_state(
            membrain_telemetry::ServerName("mcp"),
            membrain_telemetry::record_request,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                let span = tracing::info_span!(
                    "mcp",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %request_id,
                    tenant = tracing::field::Empty,
                    trace_id = tracing::field::Empty,
                );
                // A client's W3C `traceparent` header continues its trace here; one in a tool
                // call's `_meta` continues it at the tool call (`tools.rs`).
                membrain_telemetry::continue_trace(&span, request.headers());
                membrain_telemetry::record_trace_id(&span);
                span
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid)))
}

/// The Protected Resource Metadata (RFC 9728), without a key: at the path derived from the
/// resource URL (`/.well-known/oauth-protected-resource/mcp`) and at the bare well-known path,
/// which clients try when they have no `WWW-Authenticate` to follow. Any origin may read it (a
/// browser-based client fetches it from its own page).
fn resource_metadata_routes(validator: &membrain_oauth::TokenValidator) -> Result<Router, String> {
    let document = Arc::new(validator.metadata(&[]));
    let path = membrain_oauth::metadata_path_for(&validator.settings().audience)
        .map_err(|e| e.to_string())?;
    let serve = move || {
        let document = document.clone();
        async move {
            (
                [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
                axum::Json(document.as_ref().clone()),
            )
        }
    };
    let mut router = Router::new().route(membrain_oauth::METADATA_WELL_KNOWN, get(serve.clone()));
    if path != membrain_oauth::METADATA_WELL_KNOWN {
        router = router.route(&path, get(serve));
    }
    Ok(router)
}

async fn health() -> axum::Json<Value> {
    axum::Json(json!({
        "status": "healthy", "service": "membrain-mcp", "version": env!("CARGO_PKG_VERSION"),
    }))
}

fn http_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// A JSON-RPC error answer for a message that could not be handled at all.
fn jsonrpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    jsonrpc_error_for(status, code, message, None)
}

/// A JSON-RPC error answer carrying the request's `id` when it could be read (`null` otherwise).
fn jsonrpc_error_for(status: StatusCode, code: i64, message: &str, id: Option<&Value>) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": { "code": code, "message": message },
    });
    (status, axum::Json(body)).into_response()
}

/// A request's JSON-RPC `id`, when it has a usable one (a string or a number).
fn request_id(message: &Value) -> Option<&Value> {
    message
        .get("id")
        .filter(|id| id.is_string() || id.is_number())
}

/// The largest error answer [`answer_with_id`] reads to put the request's `id` in.
const MAX_ERROR_ANSWER_BYTES: u64 = 64 * 1024;

/// Puts the request's `id` into a JSON-RPC error answered with `"id": null` (rmcp's answers to
/// a missing `Accept` or `Content-Type`, for instance), so that every error a client gets for a
/// request it can match carries that request's `id`. Other answers pass unchanged, unread.
async fn answer_with_id(response: Response, id: &Value) -> Response {
    use axum::body::HttpBody;
    let status = response.status();
    let is_json = is_json(&response);
    let small = response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= MAX_ERROR_ANSWER_BYTES);
    if !(status.is_client_error() || status.is_server_error()) || !is_json || !small {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_ERROR_ANSWER_BYTES as usize).await {
        Ok(bytes) => bytes,
        Err(_) => return jsonrpc_error_for(status, -32603, "Internal error", Some(id)),
    };
    let mut answer: Value = match serde_json::from_slice(&bytes) {
        Ok(answer) => answer,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    let is_anonymous_error = answer.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
        && answer.get("error").is_some()
        && answer.get("id").is_none_or(Value::is_null);
    if !is_anonymous_error {
        return Response::from_parts(parts, Body::from(bytes));
    }
    answer["id"] = id.clone();
    let bytes = serde_json::to_vec(&answer).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// Whether an answer's body is JSON (by its `Content-Type`).
fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// How long `add_memory` may wait for its ingest job within a request deadline: ten seconds
/// less, for the calls around the wait and the answer, and never more than the 50 s that keep
/// the answer inside a load balancer's 60 s idle timeout.
fn ingest_wait(request_timeout: Duration) -> Duration {
    request_timeout
        .saturating_sub(Duration::from_secs(10))
        .min(Duration::from_secs(50))
}

/// rmcp answers some refusals (a missing `Accept` or `Content-Type`, another HTTP method, an
/// unknown protocol version) with plain text; clients get them as JSON-RPC errors like every
/// other refusal, with rmcp's status and words.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    // rmcp's texts are one line; anything longer is cut rather than buffered.
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        text
    };
    let mut answer = jsonrpc_error(status, -32600, &message);
    // Keep what else rmcp said, such as `Allow` on a 405.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    answer
}

/// `host[:port]` matches an allowed entry exactly, or by name when the entry has no port. An
/// empty list allows nothing.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.to_lowercase();
    let name = match host.rsplit_once(':') {
        Some((name, port))
            if !name.is_empty()
                && port.chars().all(|c| c.is_ascii_digit())
                && !name.ends_with(':') =>
        {
            name
        }
        _ => host.as_str(),
    };
    allowed.iter().any(|a| *a == host || *a == name)
}

fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    let origin = origin.trim_end_matches('/').to_lowercase();
    allowed.iter().any(|a| {
        *a == origin
            || origin.strip_prefix(a.as_str()).is_some_and(|rest| {
                rest.starts_with(':') && rest[1..].chars().all(|c| c.is_ascii_digit())
            })
    })
}

async fn check_host_and_origin(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let headers: &HeaderMap = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !gate.allowed_hosts.allows(host) {
        return http_error(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            "this Host is not allowed: add it to MEMBRAIN_MCP_ALLOWED_HOSTS (the public name of the load balancer)",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| origin_allowed(o, &gate.allowed_origins));
        if !allowed {
            return http_error(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this Origin is not allowed: add it to MEMBRAIN_MCP_ALLOWED_ORIGINS",
            );
        }
    }
    next.run(request).await
}

/// Caps the body and makes sure it is one JSON-RPC 2.0 message before rmcp parses it.
async fn check_body(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, gate.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return jsonrpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                -32600,
                &format!(
                    "the request body is larger than {} bytes",
                    gate.max_body_bytes
                ),
            );
        }
    };
    let message: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => {
            return jsonrpc_error(
                StatusCode::BAD_REQUEST,
                -32700,
                &format!("Parse error: {e}"),
            );
        }
    };
    let problem = match &message {
        Value::Array(_) => Some("JSON-RPC batches are not supported: send one message per request"),
        Value::Object(object) => {
            if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
                Some("Invalid Request: the message must have \"jsonrpc\": \"2.0\"")
            } else if object.get("method").is_some_and(|m| !m.is_string()) {
                Some("Invalid Request: \"method\" must be a string")
            } else if !object.contains_key("method")
                && !object.contains_key("result")
                && !object.contains_key("error")
            {
                Some(
                    "Invalid Request: a message needs \"method\" (or \"result\"/\"error\" for a response)",
                )
            } else {
                None
            }
        }
        _ => Some("Invalid Request: a JSON-RPC message is a JSON object"),
    };
    let id = request_id(&message).cloned();
    if let Some(problem) = problem {
        return jsonrpc_error_for(StatusCode::BAD_REQUEST, -32600, problem, id.as_ref());
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    match id {
        Some(id) => answer_with_id(response, &id).await,
        None => response,
    }
}

/// Refuses requests without a valid key or access token; passes the caller on to the tools.
async fn check_key(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    if let Some(oauth) = &gate.oauth {
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(membrain_oauth::bearer_token)
            .filter(|token| membrain_oauth::looks_like_jwt(token))
            .map(str::to_owned);
        if let Some(token) = token {
            return check_token(oauth, &token, request, next).await;
        }
    }
    let headers = request.headers();
    let Some(key) = key_from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok())) else {
        return unauthorized(
            &gate,
            "missing API key: configure `X-API-Key: <key>` or `Authorization: Bearer <key>` in your MCP client",
        );
    };
    match gate.keys.resolve(&key).await {
        Ok(Some(tenant)) => serve_tenant(tenant, ApiCredential::Own(key), request, next).await,
        Ok(None) => unauthorized(&gate, "the API key is not valid or has been revoked"),
        Err(e) => {
            tracing::warn!(error = %e, "could not check a key");
            http_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the key source could not be reached to check the key; retry shortly",
            )
        }
    }
}

/// An access token's caller: its tenant, served through the service key (or, in the gateway
/// profile, directly). The token itself goes no further than this function.
async fn check_token(oauth: &McpOAuth, token: &str, request: Request, next: Next) -> Response {
    match oauth.validator.validate(token).await {
        Ok(valid) => {
            let credential = match &oauth.service_key {
                Some(service) => ApiCredential::ServiceActingFor(service.clone()),
                None => ApiCredential::None,
            };
            serve_tenant(valid.tenant, credential, request, next).await
        }
        Err(error) if error.is_unavailable() => {
            tracing::warn!(%error, "could not check an access token");
            http_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the authorization server's keys could not be fetched to check the token; retry shortly",
            )
        }
        Err(error) => {
            tracing::info!(%error, "refused an access token");
            let response = http_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                &error.to_string(),
            );
            with_challenge(response, oauth, Some(&error))
        }
    }
}

/// What the tools call the REST API with for one request.
enum ApiCredential {
    /// The caller's own key.
    Own(membrain_auth::ApiKey),
    /// The bridge's service key, naming the request's tenant (an OAuth caller's).
    ServiceActingFor(membrain_auth::ApiKey),
    /// Nothing: the tools call no API (the gateway profile's token callers).
    None,
}

/// Runs the request for `tenant`, with the credential the tools call the API with.
async fn serve_tenant(
    tenant: membrain_memory::TenantId,
    credential: ApiCredential,
    mut request: Request,
    next: Next,
) -> Response {
    tracing::Span::current().record("tenant", tenant.as_str());
    // The request metrics name the tenant only when per-tenant labels are on.
    let label = membrain_telemetry::tenant_labels()
        .then(|| membrain_telemetry::TenantLabel(Arc::from(tenant.as_str())));
    match credential {
        ApiCredential::Own(key) => {
            request.extensions_mut().insert(CallerKey(key));
        }
        ApiCredential::ServiceActingFor(key) => {
            request.extensions_mut().insert(CallerKey(key));
            request.extensions_mut().insert(ActingFor(tenant.clone()));
        }
        ApiCredential::None => {}
    }
    request.extensions_mut().insert(CallerTenant(tenant));
    let mut response = next.run(request).await;
    if let Some(label) = label {
        response.extensions_mut().insert(label);
    }
    response
}

/// 401, with the OAuth challenge that leads a client to the authorization server when OAuth is
/// on.
fn unauthorized(gate: &Gate, message: &str) -> Response {
    let response = http_error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    match &gate.oauth {
        Some(oauth) => with_challenge(response, oauth, None),
        None => response,
    }
}

/// A 401 with `WWW-Authenticate: Bearer resource_metadata=…` (and the token's error, if one
/// was given).
fn with_challenge(
    mut response: Response,
    oauth: &McpOAuth,
    error: Option<&membrain_oauth::TokenError>,
) -> Response {
    if let Ok(value) = oauth.validator.www_authenticate(error).parse() {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// A bound, ready-to-run MCP HTTP server.
pub struct McpServer {
    listener: TcpListener,
    settings: McpSettings,
    backend: McpBackend,
}

impl McpServer {
    pub async fn bind(settings: McpSettings) -> std::io::Result<Self> {
        Self::bind_with(settings, McpBackend::Api).await
    }

    pub async fn bind_with(settings: McpSettings, backend: McpBackend) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.listen).await?;
        Ok(Self {
            listener,
            settings,
            backend,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled; requests in progress then finish (each within the
    /// request timeout, which is also the grace period) before this returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let router = router_with(&self.settings, self.backend, shutdown.clone())
            .map_err(std::io::Error::other)?;
        let grace = self.settings.http.request_timeout;
        membrain_http::serve(self.listener, router, self.settings.http, shutdown, grace)
            .await
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_by_name_or_exactly() {
        let allowed = vec![
            "localhost".to_owned(),
            "mcp.example.com:443".to_owned(),
            "[::1]".to_owned(),
        ];
        assert!(host_allowed("localhost:8100", &allowed));
        assert!(host_allowed("LOCALHOST", &allowed));
        assert!(host_allowed("mcp.example.com:443", &allowed));
        assert!(!host_allowed("mcp.example.com:80", &allowed));
        assert!(host_allowed("[::1]:8100", &allowed));
        assert!(!host_allowed("evil.example", &allowed));
        assert!(!host_allowed("", &allowed));
        assert!(
            !host_allowed("anything", &[]),
            "an empty list allows nothing"
        );
    }

    #[test]
    fn allowed_hosts_are_never_off_by_accident() {
        assert_eq!(
            AllowedHosts::parse(["", "  "]),
            Err(AllowedHostsError::Empty)
        );
        assert_eq!(
            AllowedHosts::parse(Vec::<String>::new()),
            Err(AllowedHostsError::Empty)
        );
        assert_eq!(AllowedHosts::parse([" * "]), Ok(AllowedHosts::Any));
        assert_eq!(
            AllowedHosts::parse(["*", "localhost"]),
            Err(AllowedHostsError::WildcardWithNames)
        );
        let list = AllowedHosts::parse([" MCP.example.com ", "", "localhost"]).expect("a list");
        assert_eq!(
            list,
            AllowedHosts::List(vec!["mcp.example.com".into(), "localhost".into()])
        );
        assert!(list.allows("mcp.example.com:443"));
        assert!(!list.allows("evil.example"));
        assert!(AllowedHosts::Any.allows("evil.example"));
        assert!(!AllowedHosts::List(Vec::new()).allows("localhost"));
    }

    #[test]
    fn add_memory_waits_within_the_request_deadline() {
        assert_eq!(
            ingest_wait(Duration::from_secs(60)),
            Duration::from_secs(50)
        );
        assert_eq!(
            ingest_wait(Duration::from_secs(300)),
            Duration::from_secs(50)
        );
        assert_eq!(
            ingest_wait(Duration::from_secs(25)),
            Duration::from_secs(15)
        );
        assert_eq!(ingest_wait(Duration::from_secs(5)), Duration::ZERO);
    }

    #[test]
    fn origins_match_scheme_host_and_any_port_when_unspecified() {
        let allowed = vec![
            "http://localhost".to_owned(),
            "https://app.example.com:8443".to_owned(),
        ];
        assert!(origin_allowed("http://localhost:3000", &allowed));
        assert!(origin_allowed("http://localhost", &allowed));
        assert!(!origin_allowed("http://localhost.evil.com", &allowed));
        assert!(!origin_allowed("https://localhost", &allowed));
        assert!(origin_allowed("https://app.example.com:8443/", &allowed));
        assert!(!origin_allowed("https://app.example.com", &allowed));
        assert!(!origin_allowed("null", &allowed));
    }
}
