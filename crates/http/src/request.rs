//! One request: the in-flight cap, the body timeout and the whole-request deadline around the
//! router, and the JSON errors they answer with.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::timeout::{TimeoutBody, TimeoutError};

use crate::HttpLimits;
use crate::throttle::Throttle;

pub(crate) type Response = axum::response::Response;

/// What every request of one server shares.
pub(crate) struct RequestHandler {
    router: Router,
    limits: HttpLimits,
    /// One permit per request in progress, up to `max_concurrent_requests`.
    in_flight: Arc<Semaphore>,
    busy_log: Throttle,
}

impl RequestHandler {
    pub(crate) fn new(router: Router, limits: HttpLimits) -> Self {
        Self {
            router,
            in_flight: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            limits,
            busy_log: Throttle::new(Duration::from_secs(10)),
        }
    }

    pub(crate) fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// Answers one request: 503 `busy` beyond the in-flight cap, 408 `body_timeout` when its
    /// body stalled, 503 `deadline_exceeded` past the request deadline, the router's answer
    /// otherwise.
    pub(crate) async fn handle(&self, request: Request<Incoming>) -> Response {
        // Refused at once rather than queued: a queue would only hold callers until their own
        // timeouts, while they could retry another task.
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            if self.busy_log.ready() {
                tracing::warn!(
                    max_concurrent_requests = self.limits.max_concurrent_requests,
                    "at the cap of requests in progress: answering 503 busy"
                );
            }
            return busy(self.limits.max_concurrent_requests);
        };
        let (parts, body) = request.into_parts();
        let body_stalled = Arc::new(AtomicBool::new(false));
        let body = WatchedBody {
            inner: Box::pin(TimeoutBody::new(self.limits.body_timeout, body)),
            stalled: body_stalled.clone(),
        };
        let request = Request::from_parts(parts, Body::new(body));
        let method = request.method().clone();
        let uri = request.uri().clone();
        let answer = tokio::time::timeout(
            self.limits.request_timeout,
            self.router.clone().oneshot(request),
        )
        .await;
        // The router answered from a body error (413, 400, a JSON-RPC error…); what really
        // happened is that the body stalled, and that is what the caller must hear.
        if body_stalled.load(Ordering::Relaxed) {
            return body_timeout(self.limits.body_timeout);
        }
        match answer {
            Ok(Ok(response)) => response,
            Ok(Err(infallible)) => match infallible {},
            Err(_elapsed) => {
                // The path only: query strings may carry user content.
                tracing::warn!(
                    method = %method,
                    path = %uri.path(),
                    request_timeout = ?self.limits.request_timeout,
                    "a request ran past its deadline and was stopped"
                );
                deadline_exceeded(self.limits.request_timeout)
            }
        }
    }
}

/// The request body, noting when it stalled past the body timeout.
struct WatchedBody {
    inner: Pin<Box<TimeoutBody<Incoming>>>,
    stalled: Arc<AtomicBool>,
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let frame = this.inner.as_mut().poll_frame(cx);
        if let Poll::Ready(Some(Err(error))) = &frame
            && error.is::<TimeoutError>()
        {
            this.stalled.store(true, Ordering::Relaxed);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `{"error": {"code", "message"}}`, the error shape of both servers.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

fn busy(max: usize) -> Response {
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        &format!(
            "the server is handling as many requests as it accepts at once ({max}); retry in a \
             second"
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn body_timeout(timeout: Duration) -> Response {
    error_response(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        &format!(
            "the request body stalled: nothing arrived for {}; send the whole body without pauses",
            seconds(timeout)
        ),
    )
}

fn deadline_exceeded(timeout: Duration) -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "deadline_exceeded",
        &format!(
            "the request did not finish within {} and was stopped (a write may or may not have \
             been applied); retry, or ask for less in one call",
            seconds(timeout)
        ),
    )
}

/// `60 s`, or `1.5 s` for durations that are not whole seconds.
fn seconds(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(seconds(Duration::from_secs(60)), "60 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }
}
