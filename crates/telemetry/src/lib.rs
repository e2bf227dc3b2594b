//! What operators watch: metrics in Prometheus' text format and traces over OTLP.
//!
//! * [`metrics_server`]: installs the process's `metrics` recorder (Prometheus exposition,
//!   latencies as histograms with fixed buckets, [`describe`]d names) and serves it at
//!   `GET /metrics` on a listener of its own ([`MetricsServer`]), never on a public port and
//!   never behind a tenant key.
//! * [`http_metrics`]: the axum middleware both servers count their requests with, by route
//!   template (axum's `MatchedPath`, never the raw path), method and status.
//! * [`trace_export`]: OpenTelemetry traces over OTLP/HTTP when the standard `OTEL_…` variables
//!   ask for them ([`TraceExport::from_environment`]), as a `tracing` layer.
//! * [`propagation`]: W3C `traceparent` in and out of HTTP headers and MCP `_meta`.
//!
//! Every other crate records through the `metrics` facade's macros (cheap, no-ops until a
//! recorder is installed) and names its metrics `membrain_…`; the names are listed in
//! README.md ("Metrics and traces").
//!
//! This crate knows HTTP and the telemetry protocols only: no route, store, key or tenant
//! logic. A tenant reaches a label only through [`TenantLabel`], and only when the operator
//! turned per-tenant labels on ([`tenant_labels`]).

pub mod http_metrics;
pub mod metrics_server;
pub mod propagation;
pub mod trace_export;

/// The target of spans that only traces need (store calls, embeddings, tool calls, the bridge's
/// API requests): the binary's log layer leaves them out, so log lines keep naming the request's
/// span (its request id and tenant) while traces show the work under it.
pub const TRACE_ONLY_TARGET: &str = "membrain_trace";

pub use http_metrics::{ServerName, TenantLabel, record_request};
pub use metrics_server::{MetricsServer, describe, install_recorder, tenant_labels};
pub use propagation::{
    RequestSpan, continue_trace, continue_trace_from, inject_trace, record_trace_id,
    remember_request_span,
};
pub use trace_export::{TraceExport, TraceExportError};
