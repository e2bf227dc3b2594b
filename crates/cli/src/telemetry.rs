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

pub fn init(level: &str, format: LogFormat, target: LogTarget) -> Result<()> {
    let filter = filter(level)?;
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
