//! Logging, set up once: JSON lines (what CloudWatch's awslogs driver collects) or pretty text,
//! to stdout, or to stderr when stdout carries a protocol (MCP over stdio) or data (export).

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

pub fn init(level: &str, format: LogFormat, target: LogTarget) -> Result<()> {
    // LOG_LEVEL is often upper case (INFO); filters are lower case.
    let filter = EnvFilter::try_new(level.to_lowercase()).with_context(|| {
        format!("LOG_LEVEL {level:?} is not a level (error, warn, info, debug, trace) or filter")
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (format, target) {
        (LogFormat::Json, LogTarget::Stdout) => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        (LogFormat::Json, LogTarget::Stderr) => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .try_init(),
        (LogFormat::Pretty, LogTarget::Stdout) => builder.compact().try_init(),
        (LogFormat::Pretty, LogTarget::Stderr) => {
            builder.compact().with_writer(std::io::stderr).try_init()
        }
    };
    result.map_err(|e| anyhow::anyhow!("could not set up logging: {e}"))
}
