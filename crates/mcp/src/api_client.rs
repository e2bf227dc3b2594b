//! [`MemoryApiClient`]: the MCP bridge's HTTP client for the Memory REST API.
//!
//! Every call carries the caller's own key (`X-API-Key`), so the API decides the tenant; the
//! bridge holds no data and no keys of its own. One pooled `reqwest` client is shared by all
//! calls, so connections to the API are reused.

use std::time::Duration;

use membrain_auth::ApiKey;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

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

    /// Calls the API: `segments` are appended to `/api/v1` one path segment each (so ids are
    /// escaped, never spliced), `query` pairs are URL-encoded, `body` is sent as JSON.
    pub async fn call(
        &self,
        key: &ApiKey,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ApiCallError> {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        let mut request = self
            .http
            .request(method, url)
            .header("x-api-key", key.expose_secret())
            .header("accept", "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ApiCallError::Unavailable(describe(e)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ApiCallError::Unavailable(describe(e)))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ApiCallError::BadResponse(format!("invalid JSON ({e})")));
        }
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ApiCallError::Unavailable(format!(
                "HTTP {status}: {}",
                field("message").unwrap_or_else(|| "no details".into())
            )));
        }
        Err(ApiCallError::Rejected {
            status: status.as_u16(),
            code: field("code").unwrap_or_else(|| "error".into()),
            message: field("message")
                .unwrap_or_else(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes))),
        })
    }
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
