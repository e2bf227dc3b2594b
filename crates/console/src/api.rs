//! [`ConsoleApi`]: the console's only way to data. It hands each call to the Memory REST API's
//! own router in this process (as `membrain-mcp`'s `InProcessApi` does for `membrain serve`),
//! with the signed-in key in `X-API-Key`, and reads the answer into `membrain-contract` types.
//! So a page sees exactly what that key's tenant may see, under the same limits and errors.

use std::time::Duration;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use membrain_auth::ApiKey;
use membrain_contract::{ErrorBody, ErrorDetail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

/// The most an answer may carry; the API's own answer bound is far below it.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The API's router, called in process.
#[derive(Clone)]
pub struct ConsoleApi {
    router: axum::Router,
    timeout: Duration,
}

/// Why a call did not produce its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFailure {
    /// The API answered with an error (its status, code and message).
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// The API did not answer in time, or answered something unreadable.
    Unavailable(String),
}

impl ConsoleApi {
    /// `router` is the API's whole router (what it serves at its root, `/api/v1/…` included).
    pub fn new(router: axum::Router, timeout: Duration) -> Self {
        Self { router, timeout }
    }

    /// `GET /api/v1/<path>?<query>` as `key`.
    pub async fn get<A: DeserializeOwned>(
        &self,
        key: &ApiKey,
        segments: &[&str],
        query: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<A, ApiFailure> {
        let query = match query {
            Some(query) => serde_urlencoded::to_string(query)
                .map_err(|e| ApiFailure::Unavailable(format!("could not encode a query: {e}")))?,
            None => String::new(),
        };
        self.call(key, Method::GET, segments, &query, None).await
    }

    /// `POST /api/v1/<path>` with `body` as JSON, as `key`.
    pub async fn post<A: DeserializeOwned>(
        &self,
        key: &ApiKey,
        segments: &[&str],
        body: &(impl Serialize + ?Sized),
    ) -> Result<A, ApiFailure> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ApiFailure::Unavailable(format!("could not encode a body: {e}")))?;
        self.call(key, Method::POST, segments, "", Some(body)).await
    }

    async fn call<A: DeserializeOwned>(
        &self,
        key: &ApiKey,
        method: Method,
        segments: &[&str],
        query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<A, ApiFailure> {
        let mut uri = String::from("/api/v1");
        for segment in segments {
            uri.push('/');
            uri.push_str(&percent_encode_segment(segment));
        }
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(query);
        }
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("x-api-key", key.expose_secret())
            .header("accept", "application/json");
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body)
            }
            None => Body::empty(),
        };
        let request = request
            .body(body)
            .map_err(|e| ApiFailure::Unavailable(format!("could not build a call: {e}")))?;
        let response =
            match tokio::time::timeout(self.timeout, self.router.clone().oneshot(request)).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => return Err(ApiFailure::Unavailable("the API timed out".to_owned())),
            };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|e| ApiFailure::Unavailable(format!("reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ApiFailure::Unavailable(format!("the API's answer was not understood: {e}"))
            });
        }
        let detail = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|body| body.error)
            .unwrap_or_else(|_| ErrorDetail {
                code: "error".to_owned(),
                message: format!("the API answered HTTP {status}"),
            });
        Err(ApiFailure::Refused {
            status,
            code: detail.code,
            message: detail.message,
        })
    }
}

/// One path segment, percent-encoded so an id can never add a segment or a query.
pub(crate) fn percent_encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_escape_their_place() {
        assert_eq!(percent_encode_segment("a/../b?c=d"), "a%2F..%2Fb%3Fc%3Dd");
        assert_eq!(percent_encode_segment("key_01AB-x.y~z"), "key_01AB-x.y~z");
    }
}
