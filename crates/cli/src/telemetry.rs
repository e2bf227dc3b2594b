//! Logging, set up once: JSON lines (what CloudWatch's awslogs driver collects) or pretty text,
//! to stdout, or to stderr when stdout carries a protocol (MCP over stdio) or data (export);
//! and, for the servers, OpenTelemetry traces over OTLP beside the logs when the standard
//! `OTEL_…` variables configure an endpoint (`membrain-telemetry`).

use anyhow::{Context, Result};
use membrain_telemetry::TraceExport;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::cli::LogFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Parses LOG_LEVEL: a level (`INFO` works too) or a filter such as `info,membrain_api=debug`.
/// A bare word must be a level: EnvFilter would read `loud` as a target and log nothing.
fn filter(level: &str) -> Result<EnvFilter> {
    let lowered = level.trim().to_lowercase();
    let bad = || {
        format!(
            "LOG_LEVEL {level:?} is not a level (error, warn, info, debug, trace) \
             or a filter like \"info,membrain_api=debug\""
        )
    };
    if lowered
        .split(',')
        .any(|d| !d.contains('=') && !LEVELS.contains(&d.trim()))
    {
        anyhow::bail!(bad());
    }
    EnvFilter::try_new(&lowered).with_context(bad)
}

/// What `init` set up that needs an orderly end: the trace exporter, flushed by
/// [`Telemetry::shutdown`].
pub struct Telemetry {
    traces: Option<TraceExport>,
}

impl Telemetry {
    /// Exports the spans still buffered (the SDK bounds how long that may take).
    pub async fn shutdown(self) {
        if let Some(traces) = self.traces {
            let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
        }
    }
}

/// Spans only traces need (store calls, embeddings, tool calls, the bridge's API requests) use
/// this target, and the log layer leaves them out: a log line inside one still names the
/// request's span, with its request id and tenant, exactly as without traces.
const TRACE_ONLY: &str = membrain_telemetry::TRACE_ONLY_TARGET;

/// Sets up logging and, for a server (`service` names it: `membrain-api`, `membrain-mcp`,
/// `membrain`), OpenTelemetry traces when the `OTEL_…` variables ask for them.
pub fn init(
    level: &str,
    format: LogFormat,
    target: LogTarget,
    service: Option<&str>,
) -> Result<Telemetry> {
    let filter = filter(level)?;
    let traces = match service {
        Some(name) => TraceExport::from_environment(name).context("setting up traces")?,
        None => None,
    };
    // As `tracing_subscriber::fmt()` built it before traces: internal write errors reported.
    let fmt = tracing_subscriber::fmt::layer().log_internal_errors(true);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match (format, target) {
        (LogFormat::Json, LogTarget::Stdout) => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        (LogFormat::Json, LogTarget::Stderr) => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        (LogFormat::Pretty, LogTarget::Stdout) => fmt.compact().boxed(),
        (LogFormat::Pretty, LogTarget::Stderr) => {
            fmt.compact().with_writer(std::io::stderr).boxed()
        }
    };
    let logs = logs.with_filter(filter.and(filter_fn(|metadata| {
        !(metadata.is_span() && metadata.target() == TRACE_ONLY)
    })));
    // Traces take Membrain's own spans at info and above, whatever LOG_LEVEL says: the
    // request spans, and the trace-only ones below them. Events stay in the logs.
    let spans = traces.as_ref().map(|traces| {
        traces.layer().with_filter(filter_fn(|metadata| {
            metadata.is_span()
                && metadata.target().starts_with("membrain")
                && *metadata.level() <= tracing::Level::INFO
        }))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|e| anyhow::anyhow!("could not set up logging: {e}"))?;
    Ok(Telemetry { traces })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_filters_parse_and_bare_words_must_be_levels() {
        for good in ["info", "INFO", "warn,membrain_api=debug", "off"] {
            assert!(filter(good).is_ok(), "{good}");
        }
        for bad in ["loud", "info,loud", ""] {
            assert!(filter(bad).is_err(), "{bad}");
        }
    }
}
