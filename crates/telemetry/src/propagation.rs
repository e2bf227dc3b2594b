//! W3C trace context (`traceparent`, `tracestate`) between processes: extracted from a
//! request's headers or an MCP call's `_meta` into a span's parent, injected from a span into
//! an outgoing request. All of it does nothing when no OpenTelemetry layer is installed (a
//! span then has no OpenTelemetry context to give or take).

use std::collections::HashMap;

use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The span of the HTTP request a handler runs for, kept in the request's extensions: rmcp runs
/// tool calls in tasks of their own, where `Span::current()` is no longer the request's span.
#[derive(Debug, Clone)]
pub struct RequestSpan(pub Span);

/// Middleware, inside the request's span (layered before the `TraceLayer` that makes it):
/// keeps that span in the request's extensions as [`RequestSpan`].
pub async fn remember_request_span(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    request
        .extensions_mut()
        .insert(RequestSpan(Span::current()));
    next.run(request).await
}

/// Makes `span` continue the trace of the request's `traceparent` header, if it has one. Call
/// before the span is first entered.
pub fn continue_trace(span: &Span, headers: &HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    set_remote_parent(span, parent);
}

/// Makes `span` continue the trace of a `traceparent` (and `tracestate`) given as text, as an
/// MCP client sends them in a request's `_meta`. An invalid value is ignored.
pub fn continue_trace_from(span: &Span, traceparent: &str, tracestate: Option<&str>) {
    let mut carrier = HashMap::with_capacity(2);
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(state) = tracestate {
        carrier.insert("tracestate".to_owned(), state.to_owned());
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    set_remote_parent(span, parent);
}

fn set_remote_parent(span: &Span, parent: opentelemetry::Context) {
    if !parent.span().span_context().is_valid() {
        return;
    }
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(%error, "could not continue the caller's trace");
    }
}

/// Records the OpenTelemetry trace id in `span`'s `trace_id` field (which the span must
/// declare, `tracing::field::Empty`), so JSON log lines inside it name their trace. Nothing is
/// recorded without traces: the logs stay as they were.
pub fn record_trace_id(span: &Span) {
    let context = span.context();
    let trace_id = context.span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Adds `span`'s `traceparent` (and `tracestate`) to `headers`, so the receiver's spans join
/// its trace.
pub fn inject_trace(span: &Span, headers: &mut HeaderMap) {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}
