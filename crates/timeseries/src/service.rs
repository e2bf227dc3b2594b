//! [`TimeSeriesService`]: the time-series calls as the REST API and the MCP tools make them —
//! arguments from JSON checked into the query model, the store called with the caller's tenant,
//! answers ready to serialise. One place, so the REST routes and the gateway profile's direct
//! tools cannot drift apart.

use std::sync::Arc;

use membrain_memory::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::sql::QueryResult;
use crate::{
    Aggregate, AttributeName, Bin, DatabaseName, DimensionFilter, LatestQuery, LatestResult,
    RangeQuery, RangeResult, ReadLimits, Span, TableDescription, TableRef, TableSummary,
    TimeSeriesStore, Timestamp, TsError, WriteLimits, WriteOutcome, parse_records,
};

/// Body of a write: `{records: [{time, dimensions, measures}]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBody {
    pub records: Vec<Json>,
}

/// Body of a latest-value read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatestBody {
    #[serde(default)]
    pub dimensions: Option<Json>,
    #[serde(default)]
    pub measure: Option<String>,
}

/// Body of a range read.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionBody {
    pub retention: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TablesOutput {
    pub tables: Vec<TableSummary>,
}

/// The time-series calls over one store, with the configured limits.
#[derive(Clone)]
pub struct TimeSeriesService {
    store: Arc<dyn TimeSeriesStore>,
    pub write_limits: WriteLimits,
    pub read_limits: ReadLimits,
}

impl std::fmt::Debug for TimeSeriesService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeSeriesService")
            .field("store", &self.store.describe())
            .finish()
    }
}

impl TimeSeriesService {
    pub fn new(
        store: Arc<dyn TimeSeriesStore>,
        write_limits: WriteLimits,
        read_limits: ReadLimits,
    ) -> Self {
        Self {
            store,
            write_limits,
            read_limits,
        }
    }

    pub fn store(&self) -> &Arc<dyn TimeSeriesStore> {
        &self.store
    }

    pub async fn list_tables(
        &self,
        tenant: &TenantId,
        database: Option<&str>,
    ) -> Result<TablesOutput, TsError> {
        let database = database
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(DatabaseName::parse)
            .transpose()?;
        let tables = self.store.list_tables(tenant, database.as_ref()).await?;
        Ok(TablesOutput { tables })
    }

    pub async fn describe_table(
        &self,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<TableDescription, TsError> {
        self.store.describe_table(tenant, table).await
    }

    /// Writes a batch: over the record limit (or empty) is refused whole; otherwise each record
    /// is written or rejected with its reason.
    pub async fn write_records(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        body: WriteBody,
    ) -> Result<WriteOutcome, TsError> {
        self.write_limits.check_batch_size(body.records.len())?;
        let (items, rejected) = parse_records(&body.records, &self.write_limits);
        let outcome = if items.is_empty() {
            WriteOutcome::default()
        } else {
            self.store
                .write(tenant, table, items, &self.write_limits)
                .await?
        };
        Ok(outcome.with_rejections(rejected))
    }

    pub async fn latest(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        body: LatestBody,
    ) -> Result<LatestResult, TsError> {
        let query = LatestQuery {
            table: table.clone(),
            dimensions: DimensionFilter::from_json(body.dimensions.as_ref())?,
            measure: optional_name(body.measure.as_deref())?,
        };
        self.store.latest(tenant, &query, &self.read_limits).await
    }

    pub async fn range(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        body: RangeBody,
    ) -> Result<RangeResult, TsError> {
        let query = RangeQuery {
            table: table.clone(),
            start: parse_time("start", &body.start)?,
            end: parse_time("end", &body.end)?,
            dimensions: DimensionFilter::from_json(body.dimensions.as_ref())?,
            measure: optional_name(body.measure.as_deref())?,
            bin: body
                .bin
                .as_deref()
                .map(str::trim)
                .filter(|bin| !bin.is_empty())
                .map(Bin::parse)
                .transpose()?,
            aggregate: body
                .aggregate
                .as_deref()
                .map(str::trim)
                .filter(|aggregate| !aggregate.is_empty())
                .map(Aggregate::parse)
                .transpose()?,
        };
        self.store.range(tenant, &query, &self.read_limits).await
    }

    pub async fn set_retention(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        body: RetentionBody,
    ) -> Result<TableDescription, TsError> {
        let retention = Span::parse(&body.retention).map_err(|error| {
            TsError::invalid(
                "retention",
                format!("retention: {} (for example 7d or 24h)", error.message()),
            )
        })?;
        self.store.set_retention(tenant, table, retention).await
    }

    pub async fn drop_table(&self, tenant: &TenantId, table: &TableRef) -> Result<(), TsError> {
        self.store.drop_table(tenant, table).await
    }

    /// `ts_query`: the read-only SQL subset over the tenant's tables.
    pub async fn query(&self, tenant: &TenantId, sql: &str) -> Result<QueryResult, TsError> {
        crate::sql::run(self.store.as_ref(), tenant, sql, &self.read_limits).await
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
