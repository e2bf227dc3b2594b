//! [`MemoryApi`]: how the MCP bridge and the CLI reach the Memory REST API, typed by
//! `membrain-contract`. Two transports: [`MemoryApiClient`] calls it over HTTP (`membrain mcp`, a
//! process of its own; `membrain ts`); [`InProcessApi`] hands the same request to the API's
//! router in this process (`membrain serve`), without a socket, an HTTP parse or a connection
//! pool in between. One function reads both's answers, so they answer alike, and the routes
//! (method, path, body and answer types) are written once, in `impl dyn MemoryApi`.
//!
//! Every call carries the caller's own key (`X-API-Key`), so the API decides the tenant; the
//! bridge holds no data and no keys of its own. One pooled `reqwest` client is shared by all
//! HTTP calls, so connections to the API are reused.

use std::time::Duration;

use axum::body::{Body, Bytes};
use membrain_auth::{ApiKey, TENANT_HEADER};
use membrain_contract::graph::{
    LinkAnswer, LinkRequest, NeighborhoodAnswer, NeighborhoodQuery, PathAnswer, PathQuery,
    TraverseAnswer, TraverseQuery,
};
use membrain_contract::health::WhoAmI;
use membrain_contract::memories::{
    Accepted, AddMemoryRequest, BatchRequest, DeleteAnswer, DeleteQuery, IngestJobAnswer,
    MemoriesAnswer, UpdateRequest,
};
use membrain_contract::search::{SearchAnswer, SearchRequest};
use membrain_contract::stats::StatsAnswer;
use membrain_contract::{ErrorBody, ErrorDetail};
use membrain_memory::{Memory, TenantId};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;
use tracing::Instrument;

/// One call to the API: `segments` are appended to `/api/v1` one path segment each (so ids are
/// escaped, never spliced); `query` is URL-encoded already; `body` is JSON.
#[derive(Debug, Clone)]
pub struct ApiCall<'a> {
    pub method: Method,
    pub segments: &'a [&'a str],
    pub query: String,
    pub body: Option<Vec<u8>>,
}

impl<'a> ApiCall<'a> {
    pub fn new(method: Method, segments: &'a [&'a str]) -> Self {
        Self {
            method,
            segments,
            query: String::new(),
            body: None,
        }
    }

    /// Adds `query`'s fields as URL query parameters (`None`s left out).
    pub fn query(mut self, query: &impl Serialize) -> Result<Self, ApiCallError> {
        self.query = serde_urlencoded::to_string(query).map_err(internal)?;
        Ok(self)
    }

    /// Sends `body` as JSON.
    pub fn json(mut self, body: &impl Serialize) -> Result<Self, ApiCallError> {
        self.body = Some(serde_json::to_vec(body).map_err(internal)?);
        Ok(self)
    }
}

/// The longest request id passed on to the API (a UUID is 36).
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// Whom a call is made for: the caller's own key and, when the bridge serves a request, that
/// request's id, sent on as `X-Request-Id` so the API's log lines carry the bridge's.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
    pub request_id: Option<String>,
    /// With the service key: the tenant the call is made for (an OAuth caller's), sent as
    /// `X-Membrain-Tenant`. A tenant's own key never names one.
    pub acting_for: Option<TenantId>,
}

impl Caller {
    pub fn new(key: ApiKey) -> Self {
        Self {
            key,
            request_id: None,
            acting_for: None,
        }
    }

    /// The service key acting for `tenant`.
    pub fn service(key: ApiKey, tenant: TenantId) -> Self {
        Self {
            acting_for: Some(tenant),
            ..Self::new(key)
        }
    }

    /// The same caller, with the id of the request it is served for when it is a header value
    /// of at most [`MAX_REQUEST_ID_BYTES`] (a client may send its own id: anything else is left
    /// out rather than refused, and the API makes one).
    pub fn with_request_id(mut self, id: Option<&str>) -> Self {
        self.request_id = id
            .filter(|id| {
                id.len() <= MAX_REQUEST_ID_BYTES && http::HeaderValue::from_str(id).is_ok()
            })
            .map(str::to_owned);
        self
    }
}

/// A way to the Memory REST API: sends one call with the caller's key and returns the answer's
/// status and body. The typed routes are on `dyn MemoryApi`.
#[async_trait::async_trait]
pub trait MemoryApi: Send + Sync + 'static {
    async fn send(
        &self,
        caller: &Caller,
        call: ApiCall<'_>,
    ) -> Result<(StatusCode, Bytes), ApiCallError>;
}

/// The REST routes, each with its body and answer types, whichever the transport.
impl dyn MemoryApi {
    /// Sends `call` and reads the answer as `A` (see [`answer`]).
    pub async fn request<A: DeserializeOwned>(
        &self,
        caller: &Caller,
        call: ApiCall<'_>,
    ) -> Result<A, ApiCallError> {
        let (status, bytes) = self.send(caller, call).await?;
        answer(status, &bytes)
    }

    /// `GET /auth/whoami`: the tenant of the caller's key.
    pub async fn whoami(&self, caller: &Caller) -> Result<WhoAmI, ApiCallError> {
        self.request(caller, ApiCall::new(Method::GET, &["auth", "whoami"]))
            .await
    }

    /// `POST /memories`: queues the memory's ingest job.
    pub async fn add_memory(
        &self,
        caller: &Caller,
        request: &AddMemoryRequest,
    ) -> Result<Accepted, ApiCallError> {
        let call = ApiCall::new(Method::POST, &["memories"]).json(request)?;
        self.request(caller, call).await
    }

    /// `GET /memories/jobs/{job_id}`.
    pub async fn ingest_job(
        &self,
        caller: &Caller,
        job_id: &str,
    ) -> Result<IngestJobAnswer, ApiCallError> {
        let segments = ["memories", "jobs", job_id];
        self.request(caller, ApiCall::new(Method::GET, &segments))
            .await
    }

    /// `POST /memories/search`.
    pub async fn search(
        &self,
        caller: &Caller,
        request: &SearchRequest,
    ) -> Result<SearchAnswer, ApiCallError> {
        let call = ApiCall::new(Method::POST, &["memories", "search"]).json(request)?;
        self.request(caller, call).await
    }

    /// `POST /memories/batch`.
    pub async fn memories(
        &self,
        caller: &Caller,
        request: &BatchRequest,
    ) -> Result<MemoriesAnswer, ApiCallError> {
        let call = ApiCall::new(Method::POST, &["memories", "batch"]).json(request)?;
        self.request(caller, call).await
    }

    /// `PUT /memories/{memory_id}`: the memory as updated.
    pub async fn update_memory(
        &self,
        caller: &Caller,
        memory_id: &str,
        request: &UpdateRequest,
    ) -> Result<Memory, ApiCallError> {
        let segments = ["memories", memory_id];
        let call = ApiCall::new(Method::PUT, &segments).json(request)?;
        self.request(caller, call).await
    }

    /// `DELETE /memories/bulk?…`.
    pub async fn delete_memories(
        &self,
        caller: &Caller,
        query: &DeleteQuery,
    ) -> Result<DeleteAnswer, ApiCallError> {
        let call = ApiCall::new(Method::DELETE, &["memories", "bulk"]).query(query)?;
        self.request(caller, call).await
    }

    /// `GET /stats`.
    pub async fn stats(&self, caller: &Caller) -> Result<StatsAnswer, ApiCallError> {
        self.request(caller, ApiCall::new(Method::GET, &["stats"]))
            .await
    }

    /// `POST /memories/link`.
    pub async fn link(
        &self,
        caller: &Caller,
        request: &LinkRequest,
    ) -> Result<LinkAnswer, ApiCallError> {
        let call = ApiCall::new(Method::POST, &["memories", "link"]).json(request)?;
        self.request(caller, call).await
    }

    /// `POST /memories/unlink`.
    pub async fn unlink(
        &self,
        caller: &Caller,
        request: &LinkRequest,
    ) -> Result<LinkAnswer, ApiCallError> {
        let call = ApiCall::new(Method::POST, &["memories", "unlink"]).json(request)?;
        self.request(caller, call).await
    }

    /// `GET /graph/path?…`.
    pub async fn path(
        &self,
        caller: &Caller,
        query: &PathQuery,
    ) -> Result<PathAnswer, ApiCallError> {
        let call = ApiCall::new(Method::GET, &["graph", "path"]).query(query)?;
        self.request(caller, call).await
    }

    /// `GET /graph/neighborhood?…`.
    pub async fn neighborhood(
        &self,
        caller: &Caller,
        query: &NeighborhoodQuery,
    ) -> Result<NeighborhoodAnswer, ApiCallError> {
        let call = ApiCall::new(Method::GET, &["graph", "neighborhood"]).query(query)?;
        self.request(caller, call).await
    }

    /// `GET /graph/traverse?…`.
    pub async fn traverse(
        &self,
        caller: &Caller,
        query: &TraverseQuery,
    ) -> Result<TraverseAnswer, ApiCallError> {
        let call = ApiCall::new(Method::GET, &["graph", "traverse"]).query(query)?;
        self.request(caller, call).await
    }
}

/// Why a call to the API did not produce the answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiCallError {
    /// The API refused the call (4xx) and said why.
    #[error("{message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// The API could not be reached, timed out, or failed (5xx).
    #[error("the Memory API is unavailable: {0}")]
    Unavailable(String),
    /// The API answered something the bridge could not read.
    #[error("the Memory API sent an unexpected answer: {0}")]
    BadResponse(String),
}

#[derive(Debug, Clone)]
pub struct MemoryApiClient {
    http: reqwest::Client,
    /// `…/api/v1`, without a trailing slash.
    base: Url,
}

impl MemoryApiClient {
    /// `base_url` is the API's root (`http://127.0.0.1:8000`); `/api/v1` is added here.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, String> {
        let mut base = Url::parse(base_url.trim_end_matches('/'))
            .map_err(|e| format!("API_BASE_URL {base_url:?} is not a URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!(
                "API_BASE_URL {base_url:?} must start with http:// or https://"
            ));
        }
        base.path_segments_mut()
            .map_err(|_| format!("API_BASE_URL {base_url:?} cannot have a path appended"))?
            .pop_if_empty()
            .extend(["api", "v1"]);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"))?;
        Ok(Self { http, base })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }
}

#[async_trait::async_trait]
impl MemoryApi for MemoryApiClient {
    async fn send(
        &self,
        caller: &Caller,
        call: ApiCall<'_>,
    ) -> Result<(StatusCode, Bytes), ApiCallError> {
        let span = api_call_span(&call);
        let mut request = self
            .http
            .request(call.method.clone(), api_url(&self.base, &call))
            .header("x-api-key", caller.key.expose_secret())
            .header("accept", "application/json")
            .headers(trace_headers(&span));
        if let Some(id) = &caller.request_id {
            request = request.header("x-request-id", id.as_str());
        }
        if let Some(tenant) = &caller.acting_for {
            request = request.header(TENANT_HEADER, tenant.as_str());
        }
        if let Some(body) = call.body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        async {
            let response = request
                .send()
                .await
                .map_err(|e| ApiCallError::Unavailable(describe(e)))?;
            let status = response.status();
            tracing::Span::current().record("status", status.as_u16());
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ApiCallError::Unavailable(describe(e)))?;
            Ok((status, bytes))
        }
        .instrument(span)
        .await
    }
}

/// The API's router, called in this process: the same routes, key check, per-tenant limits and
/// answers as over HTTP, minus the socket. `membrain serve` bridges to its API this way.
#[derive(Clone)]
pub struct InProcessApi {
    router: axum::Router,
    /// `…/api/v1` on a placeholder host: the router reads only the path and query.
    base: Url,
    /// The longest a call may take, as the HTTP client's timeout.
    timeout: Duration,
}

/// The most an in-process answer may carry; the API's own answer bound is far below it.
const MAX_IN_PROCESS_ANSWER: usize = 64 * 1024 * 1024;

impl InProcessApi {
    /// `router` is the API's whole router (what it serves at its root, `/api/v1/…` included).
    pub fn new(router: axum::Router, timeout: Duration) -> Self {
        Self {
            router,
            base: Url::parse("http://in-process/api/v1").expect("a constant, valid URL"),
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl MemoryApi for InProcessApi {
    async fn send(
        &self,
        caller: &Caller,
        call: ApiCall<'_>,
    ) -> Result<(StatusCode, Bytes), ApiCallError> {
        // The path and query encoded exactly as the HTTP client encodes them.
        let url = api_url(&self.base, &call);
        let span = api_call_span(&call);
        let mut request = http::Request::builder()
            .method(call.method)
            .uri(match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            })
            .header("x-api-key", caller.key.expose_secret())
            .header("accept", "application/json");
        if let Some(id) = &caller.request_id {
            request = request.header("x-request-id", id.as_str());
        }
        if let Some(tenant) = &caller.acting_for {
            request = request.header(TENANT_HEADER, tenant.as_str());
        }
        if let Some(headers) = request.headers_mut() {
            headers.extend(trace_headers(&span));
        }
        let body = match call.body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body)
            }
            None => Body::empty(),
        };
        let request = request.body(body).map_err(internal)?;
        let response = match tokio::time::timeout(
            self.timeout,
            self.router.clone().oneshot(request).instrument(span),
        )
        .await
        {
            Ok(Ok(response)) => response,
            Ok(Err(never)) => match never {},
            Err(_) => {
                return Err(ApiCallError::Unavailable(
                    "the request timed out".to_owned(),
                ));
            }
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_IN_PROCESS_ANSWER)
            .await
            .map_err(|e| ApiCallError::Unavailable(format!("reading the answer: {e}")))?;
        Ok((status, bytes))
    }
}

/// The span of one call to the API (trace-only), a client span under the tool call's: its
/// `traceparent` goes with the request, so the API's spans join the trace. The path's first
/// segment names the route (`memories`, `graph`, `ts`…); ids and texts stay out of it.
fn api_call_span(call: &ApiCall<'_>) -> tracing::Span {
    tracing::info_span!(
        target: "membrain_trace",
        "api_request",
        otel.kind = "client",
        http.request.method = %call.method,
        area = call.segments.first().copied().unwrap_or(""),
        status = tracing::field::Empty,
    )
}

/// `traceparent` (and `tracestate`) for a request made inside `span`; empty without traces.
fn trace_headers(span: &tracing::Span) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    membrain_telemetry::inject_trace(span, &mut headers);
    headers
}

/// `base` (`…/api/v1`) with the call's segments appended one path segment each (so ids are
/// escaped, never spliced) and its query.
fn api_url(base: &Url, call: &ApiCall<'_>) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.extend(call.segments);
    }
    if !call.query.is_empty() {
        url.set_query(Some(&call.query));
    }
    url
}

/// A request the bridge could not even build: a bug, said as the API being unavailable.
fn internal(error: impl std::fmt::Display) -> ApiCallError {
    ApiCallError::Unavailable(format!("could not build the call: {error}"))
}

/// The API's answer as the bridge reads it: `A` on success; otherwise a refusal that says why
/// (4xx), or the API being unavailable (5xx and 429, which a retry may cure).
fn answer<A: DeserializeOwned>(status: StatusCode, bytes: &[u8]) -> Result<A, ApiCallError> {
    if status.is_success() {
        return serde_json::from_slice(bytes)
            .map_err(|e| ApiCallError::BadResponse(format!("invalid JSON ({e})")));
    }
    let detail: Option<ErrorDetail> = serde_json::from_slice::<ErrorBody>(bytes)
        .ok()
        .map(|body| body.error);
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(ApiCallError::Unavailable(format!(
            "HTTP {status}: {}",
            detail.map_or_else(|| "no details".into(), |d| d.message)
        )));
    }
    Err(match detail {
        Some(ErrorDetail { code, message }) => ApiCallError::Rejected {
            status: status.as_u16(),
            code,
            message,
        },
        None => ApiCallError::Rejected {
            status: status.as_u16(),
            code: "error".into(),
            message: format!("HTTP {status}: {}", String::from_utf8_lossy(bytes)),
        },
    })
}

/// A transport error in words, without the URL's query (which may hold user content).
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "the request timed out".to_owned()
    } else if error.is_connect() {
        "could not connect (is `membrain api` running at API_BASE_URL?)".to_owned()
    } else {
        error.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use serde_json::{Value, json};

    use super::*;

    /// An API stand-in that echoes what reached it, and refuses with the API's error shape.
    fn echo_router() -> axum::Router {
        async fn echo(request: Request) -> axum::response::Response {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let answer = json!({
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "query": parts.uri.query(),
                "key": header("x-api-key"),
                "request_id": header("x-request-id"),
                "content_type": header("content-type"),
                "body": serde_json::from_slice::<Value>(&body).ok(),
            });
            if parts.uri.path().ends_with("/refuse") {
                let error =
                    json!({ "error": { "code": "invalid", "message": "k must be 1..100" } });
                return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
            }
            if parts.uri.path().ends_with("/busy") {
                let error = json!({ "error": { "code": "busy", "message": "retry later" } });
                return (StatusCode::TOO_MANY_REQUESTS, axum::Json(error)).into_response();
            }
            axum::Json(answer).into_response()
        }
        axum::Router::new().fallback(echo)
    }

    #[tokio::test]
    async fn in_process_and_http_calls_reach_the_api_alike() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, echo_router()).await });
        let timeout = Duration::from_secs(10);
        let over_http = MemoryApiClient::new(&format!("http://{address}"), timeout).unwrap();
        let in_process = InProcessApi::new(echo_router(), timeout);
        let key = ApiKey::generate();
        let caller = Caller::new(key.clone()).with_request_id(Some("req-42"));
        let body = json!({ "query": "tea & biscuits", "k": 3 });
        // Segments with a slash and a space stay one escaped segment; query values with `&`
        // and `=` stay one value.
        let segments = ["memories", "a/b c"];
        let query = [("tags", "x&y=z"), ("depth", "2")];
        let apis: [&dyn MemoryApi; 2] = [&over_http, &in_process];
        let mut answers = Vec::new();
        for api in apis {
            let call = ApiCall::new(Method::POST, &segments)
                .query(&query)
                .unwrap()
                .json(&body)
                .unwrap();
            let answer: Value = api.request(&caller, call).await.unwrap();
            assert_eq!(answer["path"], "/api/v1/memories/a%2Fb%20c", "{answer}");
            assert_eq!(answer["query"], "tags=x%26y%3Dz&depth=2", "{answer}");
            assert_eq!(answer["key"], key.expose_secret(), "{answer}");
            assert_eq!(answer["request_id"], "req-42", "{answer}");
            assert_eq!(answer["content_type"], "application/json", "{answer}");
            assert_eq!(answer["body"], body, "{answer}");
            answers.push(answer);
            let got: Value = api
                .request(
                    &Caller::new(key.clone()),
                    ApiCall::new(Method::GET, &["stats"]),
                )
                .await
                .unwrap();
            assert_eq!(
                (&got["method"], &got["body"], &got["request_id"]),
                (&json!("GET"), &Value::Null, &Value::Null)
            );
            let refused = api
                .request::<Value>(&caller, ApiCall::new(Method::GET, &["refuse"]))
                .await;
            assert_eq!(
                refused,
                Err(ApiCallError::Rejected {
                    status: 400,
                    code: "invalid".into(),
                    message: "k must be 1..100".into()
                })
            );
            let busy = api
                .request::<Value>(&caller, ApiCall::new(Method::GET, &["busy"]))
                .await;
            assert_eq!(
                busy,
                Err(ApiCallError::Unavailable(
                    "HTTP 429 Too Many Requests: retry later".into()
                ))
            );
        }
        assert_eq!(answers[0], answers[1]);
    }

    #[test]
    fn only_a_short_valid_request_id_is_passed_on() {
        let caller = |id: &str| {
            Caller::new(ApiKey::generate())
                .with_request_id(Some(id))
                .request_id
        };
        assert_eq!(caller("abc-123").as_deref(), Some("abc-123"));
        assert_eq!(caller(&"x".repeat(MAX_REQUEST_ID_BYTES + 1)), None);
        assert_eq!(caller("line\nbreak"), None);
    }

    #[tokio::test]
    async fn an_in_process_call_ends_at_its_timeout() {
        let slow = axum::Router::new().fallback(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let api = InProcessApi::new(slow, Duration::from_millis(50));
        let api: &dyn MemoryApi = &api;
        let answer = api.stats(&Caller::new(ApiKey::generate())).await;
        assert_eq!(
            answer,
            Err(ApiCallError::Unavailable("the request timed out".into()))
        );
    }
}
