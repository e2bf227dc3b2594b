//! The time-series calls' arguments as the REST API and the MCP tools receive them (JSON
//! bodies) and their checks into the query model. `membrain-ts-service`'s `TimeSeriesService`
//! — the one place the REST routes and the gateway's direct tools call — runs them against a
//! store; what needs no runtime lives here.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::{
    Aggregate, AttributeName, Bin, DatabaseName, DimensionFilter, LatestQuery, RangeQuery, Span,
    TableRef, TableSummary, Timestamp, TsError,
};

/// Body of a write: `{records: [{time, dimensions, measures}]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBody {
    pub records: Vec<Json>,
}

/// Body of a latest-value read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatestBody {
    #[serde(default)]
    pub dimensions: Option<Json>,
    #[serde(default)]
    pub measure: Option<String>,
}

/// Body of a range read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeBody {
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub dimensions: Option<Json>,
    #[serde(default)]
    pub measure: Option<String>,
    #[serde(default)]
    pub bin: Option<String>,
    #[serde(default)]
    pub aggregate: Option<String>,
}

/// Body of a retention change: `{retention: "30d"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionBody {
    pub retention: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TablesOutput {
    pub tables: Vec<TableSummary>,
}

/// The `database` filter of a table listing: none when empty.
pub fn database_filter(raw: Option<&str>) -> Result<Option<DatabaseName>, TsError> {
    raw.map(str::trim)
        .filter(|name| !name.is_empty())
        .map(DatabaseName::parse)
        .transpose()
}

impl LatestBody {
    /// The query this body asks for on `table`.
    pub fn into_query(self, table: &TableRef) -> Result<LatestQuery, TsError> {
        Ok(LatestQuery {
            table: table.clone(),
            dimensions: DimensionFilter::from_json(self.dimensions.as_ref())?,
            measure: optional_name(self.measure.as_deref())?,
        })
    }
}

impl RangeBody {
    /// The query this body asks for on `table`.
    pub fn into_query(self, table: &TableRef) -> Result<RangeQuery, TsError> {
        Ok(RangeQuery {
            table: table.clone(),
            start: parse_time("start", &self.start)?,
            end: parse_time("end", &self.end)?,
            dimensions: DimensionFilter::from_json(self.dimensions.as_ref())?,
            measure: optional_name(self.measure.as_deref())?,
            bin: self
                .bin
                .as_deref()
                .map(str::trim)
                .filter(|bin| !bin.is_empty())
                .map(Bin::parse)
                .transpose()?,
            aggregate: self
                .aggregate
                .as_deref()
                .map(str::trim)
                .filter(|aggregate| !aggregate.is_empty())
                .map(Aggregate::parse)
                .transpose()?,
        })
    }
}

impl RetentionBody {
    /// The retention asked for.
    pub fn span(&self) -> Result<Span, TsError> {
        Span::parse(&self.retention).map_err(|error| {
            TsError::invalid(
                "retention",
                format!("retention: {} (for example 7d or 24h)", error.message()),
            )
        })
    }
}

fn optional_name(raw: Option<&str>) -> Result<Option<AttributeName>, TsError> {
    raw.map(str::trim)
        .filter(|name| !name.is_empty())
        .map(AttributeName::parse)
        .transpose()
}

/// An RFC 3339 time, or `now`, or `now-1h` style relative times (`ago`-like shorthand agents
/// reach for).
pub fn parse_time(field: &'static str, raw: &str) -> Result<Timestamp, TsError> {
    let trimmed = raw.trim();
    if let Some(rest) = trimmed.strip_prefix("now") {
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(Timestamp::now());
        }
        let (sign, span) = match (rest.strip_prefix('-'), rest.strip_prefix('+')) {
            (Some(span), _) => (-1, span),
            (_, Some(span)) => (1, span),
            _ => (0, rest),
        };
        if sign != 0
            && let Ok(span) = Span::parse(span)
        {
            return Ok(Timestamp::now().plus_micros(sign * span.as_micros()));
        }
        return Err(TsError::invalid(
            field,
            format!(
                "{field} {raw:?} is not a time: use RFC 3339 (2026-11-26T14:00:00Z), now, or now-1h"
            ),
        ));
    }
    Timestamp::parse(trimmed).map_err(|error| {
        TsError::invalid(
            field,
            format!("{field}: {} (or now, or now-1h)", error.message()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_relative_to_now() {
        let before = Timestamp::now();
        let hour_ago = parse_time("start", "now-1h").unwrap();
        let expected = before.plus_micros(-3_600_000_000).as_micros();
        assert!((hour_ago.as_micros() - expected).abs() < 60_000_000);
        assert!(parse_time("end", " now ").unwrap() >= before);
        assert_eq!(
            parse_time("start", "2026-11-26T14:00:00Z")
                .unwrap()
                .to_rfc3339(),
            "2026-11-26T14:00:00Z"
        );
        for bad in ["now*2", "now-", "now-1x", "tomorrow", ""] {
            let error = parse_time("start", bad).unwrap_err().to_string();
            assert!(error.contains("start"), "{bad}: {error}");
        }
    }
}
