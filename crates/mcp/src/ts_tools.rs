//! The time-series tools (`ts_*`). In the `alb` profile they call the REST API with the caller's
//! key, like the memory tools; in the `gateway` profile (seed 001) the MCP server reaches the
//! time-series store itself through [`TimeSeriesService`], with the tenant its key source gave.

use std::collections::BTreeMap;
use std::sync::Arc;

use membrain_contract::ts::{LatestBody, QueryBody, RangeBody, WriteBody};
use membrain_memory::TenantId;
use membrain_timeseries::TableRef;
use membrain_timeseries::TsError;
use membrain_ts_service::TimeSeriesService;
use reqwest::Method;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api_client::ApiCall;
use crate::tools::{MembrainTools, explain, parse_output};

/// Where the `ts_*` tools get their answers.
#[derive(Clone)]
pub enum TimeSeriesAccess {
    /// Through the REST API, with the caller's key (`alb` profile, `serve`, stdio).
    Api,
    /// From the store, in this process (`gateway` profile).
    Direct(Arc<TimeSeriesService>),
}

impl std::fmt::Debug for TimeSeriesAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api => f.write_str("Api"),
            Self::Direct(service) => write!(f, "Direct({service:?})"),
        }
    }
}

/// The caller's tenant, as the HTTP layer resolved it from the key.
#[derive(Debug, Clone)]
pub struct CallerTenant(pub TenantId);

// ---- arguments ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TsListTablesArgs {
    /// Only the tables of this database (e.g. "transit"). Omit to list every table.
    #[serde(default)]
    pub database: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TsTableArgs {
    /// The database, e.g. "transit".
    pub database: String,
    /// The table, e.g. "bus_position".
    pub table: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TsWriteArgs {
    /// The database; created on first write.
    pub database: String,
    /// The table; created on first write.
    pub table: String,
    /// Records: [{"time": "2026-11-26T14:05:00Z", "dimensions": {"bus_id": "B12"}, "measures": {"speed": 31.5, "passenger_count": 18}}]. Dimensions are strings naming the series; measures are numbers, booleans or strings ({"type": "timestamp", "value": "…"} for times).
    pub records: Vec<Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TsLatestArgs {
    pub database: String,
    pub table: String,
    /// Only series with these dimension values, e.g. {"line_id": "L3"}.
    #[serde(default)]
    pub dimensions: Option<BTreeMap<String, String>>,
    /// Only this measure: the latest record that has it.
    #[serde(default)]
    pub measure: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TsRangeArgs {
    pub database: String,
    pub table: String,
    /// Start of the range, inclusive: RFC 3339 ("2026-11-26T12:00:00Z"), "now-3h" or "now".
    pub start: String,
    /// End of the range, exclusive: RFC 3339, "now-1h" or "now".
    pub end: String,
    /// Only series with these dimension values, e.g. {"bus_id": "B12"}.
    #[serde(default)]
    pub dimensions: Option<BTreeMap<String, String>>,
    /// Only this measure.
    #[serde(default)]
    pub measure: Option<String>,
    /// Bucket width such as "1m", "15m", "1h": one point per bucket (aggregate defaults to avg).
    #[serde(default)]
    pub bin: Option<String>,
    /// avg, min, max, sum, count, first or last. Without bin: one value for the whole range.
    #[serde(default)]
    pub aggregate: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TsQueryArgs {
    /// A read-only SELECT over one table named database.table, e.g. "SELECT bin(time, 15m) AS t, avg(co2_level) FROM transit.sensor_data WHERE line_id = 'L3' AND time > ago(4h) GROUP BY bin(time, 15m) ORDER BY t".
    pub sql: String,
}

// ---- outputs -----------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TsTablesOutput {
    /// {database, table, retention, created_at} per table.
    pub tables: Vec<Value>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TsDescribeOutput {
    pub database: String,
    pub table: String,
    /// How long records are kept, e.g. "365d".
    pub retention: String,
    pub created_at: String,
    /// Dimension names.
    pub dimensions: Vec<String>,
    /// {name, type} per measure; types are double, bigint, boolean, varchar, timestamp.
    pub measures: Vec<Value>,
    pub series_count: u64,
    pub row_count: u64,
    /// The oldest and newest record times, when there are records.
    pub earliest: Option<String>,
    pub latest: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TsWriteOutput {
    pub records_ingested: u64,
    /// {record_index, reason} for each record not written.
    pub rejected_records: Vec<Value>,
    /// Whether this write created the table.
    pub table_created: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TsSeriesOutput {
    /// {dimensions, points: [{time, measures}]} per series.
    pub series: Vec<Value>,
    /// Whether a limit cut the answer.
    pub truncated: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TsRangeOutput {
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub bin: Option<String>,
    #[serde(default)]
    pub aggregate: Option<String>,
    /// {dimensions, points: [{time, measures}]} per series; with a bin, a point per non-empty bucket (time = bucket start).
    pub series: Vec<Value>,
    pub truncated: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TsQueryOutput {
    /// {name, type} per column.
    pub columns: Vec<Value>,
    pub rows: Vec<Vec<Value>>,
    /// Whether the row cap cut the answer.
    pub truncated: bool,
    pub rows_scanned: u64,
}

/// One time-series call, whichever way it is answered.
enum TsCall {
    ListTables(Option<String>),
    Describe(String, String),
    Write(String, String, Vec<Value>),
    Latest(String, String, LatestBody),
    Range(String, String, RangeBody),
    Query(String),
}

fn dimensions_json(dimensions: Option<BTreeMap<String, String>>) -> Option<Value> {
    dimensions.map(|map| json!(map))
}

/// A tool error from a store error: the message says what to fix; the code helps scripts.
fn explain_ts(error: TsError) -> String {
    match error {
        TsError::Internal(_) => {
            tracing::error!(error = %error, "time-series tool failed");
            "The time-series store failed on this call; it has been logged. Try again shortly."
                .into()
        }
        TsError::Unavailable(_) => {
            tracing::warn!(error = %error, "time-series store unavailable");
            "The time-series store is unavailable. Try again shortly.".into()
        }
        // Retrying does not free a quota: the message says what does.
        TsError::QuotaExceeded(message) => format!("Quota exceeded: {message} (quota_exceeded)"),
        TsError::Busy(message) => format!("The server is busy: {message} (busy)"),
        other => format!("{} ({})", other.message(), other.code()),
    }
}

/// The same wording for the API's answers, which reach the bridge as HTTP statuses: a 429 (a
/// quota) and a 503 (busy) carry the store's message, which the generic API error text frames
/// as "unavailable, try again" — wrong for a quota. Only the service's own messages (they name
/// the quota, or the busy server) are reframed; other 429s and 503s keep the generic text.
fn explain_ts_api(text: String) -> String {
    let message = |status: &str| {
        text.split_once(status).map(|(_, rest)| {
            rest.strip_suffix(". Try again shortly.")
                .unwrap_or(rest)
                .to_owned()
        })
    };
    if let Some(message) = message("HTTP 429 Too Many Requests: ")
        && (message.contains("(max_tables)") || message.contains("(max_points)"))
    {
        return explain_ts(TsError::QuotaExceeded(message));
    }
    if let Some(message) = message("HTTP 503 Service Unavailable: ")
        && (message.starts_with("the server is busy") || message.starts_with("your tenant already"))
    {
        return explain_ts(TsError::Busy(message));
    }
    text
}

impl MembrainTools {
    async fn ts(&self, ctx: &RequestContext<RoleServer>, call: TsCall) -> Result<Value, String> {
        match self.time_series() {
            TimeSeriesAccess::Api => self.ts_through_api(ctx, call).await,
            TimeSeriesAccess::Direct(service) => {
                let tenant = ctx
                    .extensions
                    .get::<http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<CallerTenant>())
                    .map(|CallerTenant(tenant)| tenant.clone())
                    .ok_or_else(|| {
                        "No API key provided. Configure X-API-Key in your MCP client headers."
                            .to_owned()
                    })?;
                direct(service, &tenant, call).await.map_err(explain_ts)
            }
        }
    }

    async fn ts_through_api(
        &self,
        ctx: &RequestContext<RoleServer>,
        call: TsCall,
    ) -> Result<Value, String> {
        self.ts_api_call(ctx, call).await.map_err(explain_ts_api)
    }

    async fn ts_api_call(
        &self,
        ctx: &RequestContext<RoleServer>,
        call: TsCall,
    ) -> Result<Value, String> {
        let (api, caller) = self.api(ctx)?;
        let answer = match call {
            TsCall::ListTables(database) => {
                let query = [("database", database)];
                let call = ApiCall::new(Method::GET, &["ts", "tables"]).query(&query);
                api.request(&caller, call.map_err(explain)?).await
            }
            TsCall::Describe(database, table) => {
                let path = ["ts", "tables", &database, &table];
                api.request(&caller, ApiCall::new(Method::GET, &path)).await
            }
            TsCall::Write(database, table, records) => {
                let path = ["ts", "tables", &database, &table, "records"];
                let call = ApiCall::new(Method::POST, &path).json(&WriteBody { records });
                api.request(&caller, call.map_err(explain)?).await
            }
            TsCall::Latest(database, table, body) => {
                let path = ["ts", "tables", &database, &table, "latest"];
                let call = ApiCall::new(Method::POST, &path).json(&body);
                api.request(&caller, call.map_err(explain)?).await
            }
            TsCall::Range(database, table, body) => {
                let path = ["ts", "tables", &database, &table, "range"];
                let call = ApiCall::new(Method::POST, &path).json(&body);
                api.request(&caller, call.map_err(explain)?).await
            }
            TsCall::Query(sql) => {
                let call = ApiCall::new(Method::POST, &["ts", "query"]).json(&QueryBody { sql });
                api.request(&caller, call.map_err(explain)?).await
            }
        };
        answer.map_err(explain)
    }
}

async fn direct(
    service: &TimeSeriesService,
    tenant: &TenantId,
    call: TsCall,
) -> Result<Value, TsError> {
    let to_json = |value: Result<Value, serde_json::Error>| {
        value.map_err(|e| TsError::Internal(format!("cannot serialise an answer: {e}")))
    };
    match call {
        TsCall::ListTables(database) => to_json(serde_json::to_value(
            service.list_tables(tenant, database.as_deref()).await?,
        )),
        TsCall::Describe(database, table) => {
            let table = TableRef::parse(&database, &table)?;
            to_json(serde_json::to_value(
                service.describe_table(tenant, &table).await?,
            ))
        }
        TsCall::Write(database, table, records) => {
            let table = TableRef::parse(&database, &table)?;
            let outcome = service
                .write_records(tenant, &table, WriteBody { records })
                .await?;
            to_json(serde_json::to_value(outcome))
        }
        TsCall::Latest(database, table, body) => {
            let table = TableRef::parse(&database, &table)?;
            to_json(serde_json::to_value(
                service.latest(tenant, &table, body).await?,
            ))
        }
        TsCall::Range(database, table, body) => {
            let table = TableRef::parse(&database, &table)?;
            to_json(serde_json::to_value(
                service.range(tenant, &table, body).await?,
            ))
        }
        TsCall::Query(sql) => to_json(serde_json::to_value(service.query(tenant, &sql).await?)),
    }
}

#[tool_router(router = ts_tool_router, vis = "pub(crate)")]
impl MembrainTools {
    #[tool(
        title = "List time-series tables",
        description = "List the time-series tables you can query: database, table, retention. Start here, then ts_describe_table.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn ts_list_tables(
        &self,
        Parameters(args): Parameters<TsListTablesArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<TsTablesOutput>, String> {
        parse_output(self.ts(&ctx, TsCall::ListTables(args.database)).await?)
    }

    #[tool(
        title = "Describe a time-series table",
        description = "Describe a time-series table: its dimensions (which name a series), its measures with their types, how many series and rows it has, and the time span it covers. Call it before ts_latest, ts_range or ts_query to learn the names.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn ts_describe_table(
        &self,
        Parameters(args): Parameters<TsTableArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<TsDescribeOutput>, String> {
        parse_output(
            self.ts(&ctx, TsCall::Describe(args.database, args.table))
                .await?,
        )
    }

    #[tool(
        title = "Write time-series records",
        description = "Write time-series records (a batch) into database.table, creating both on first write. Each record: {time (RFC 3339), dimensions: {name: string}, measures: {name: value}}. Answers how many were ingested and, per rejected record, its index and the reason (bad time, type mismatch, no measures, outside retention…); rejected records are not written, the others are.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn ts_write_records(
        &self,
        Parameters(args): Parameters<TsWriteArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<TsWriteOutput>, String> {
        parse_output(
            self.ts(&ctx, TsCall::Write(args.database, args.table, args.records))
                .await?,
        )
    }

    #[tool(
        title = "Latest time-series values",
        description = "The latest value of each series in a table (e.g. where is each bus now, how crowded is stop S012 now), optionally only series with given dimension values and only one measure.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn ts_latest(
        &self,
        Parameters(args): Parameters<TsLatestArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<TsSeriesOutput>, String> {
        let body = LatestBody {
            dimensions: dimensions_json(args.dimensions),
            measure: args.measure,
        };
        parse_output(
            self.ts(&ctx, TsCall::Latest(args.database, args.table, body))
                .await?,
        )
    }

    #[tool(
        title = "Time-series values over a range",
        description = "Records of a table between start and end, per series; with bin (\"1m\", \"1h\") one aggregated point per bucket, with aggregate (avg, min, max, sum, count, first, last) and no bin one value for the whole range. E.g. average speed of bus B12 per 15 minutes over the last 3 hours: start \"now-3h\", end \"now\", dimensions {\"bus_id\": \"B12\"}, measure \"speed\", bin \"15m\".",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn ts_range(
        &self,
        Parameters(args): Parameters<TsRangeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<TsRangeOutput>, String> {
        let body = RangeBody {
            start: args.start,
            end: args.end,
            dimensions: dimensions_json(args.dimensions),
            measure: args.measure,
            bin: args.bin,
            aggregate: args.aggregate,
        };
        parse_output(
            self.ts(&ctx, TsCall::Range(args.database, args.table, body))
                .await?,
        )
    }

    #[tool(
        title = "Query time series with SQL",
        description = "A read-only SQL query over one time-series table (database.table), for what ts_latest and ts_range cannot say: filters on measures, aggregates across series, GROUP BY dimensions and bin(time, 15m), ORDER BY, LIMIT. Times: ago(1h), now(), '2026-11-26T14:00:00Z'. Results are capped (truncated says so). Writes and other tenants' data are refused.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn ts_query(
        &self,
        Parameters(args): Parameters<TsQueryArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<TsQueryOutput>, String> {
        parse_output(self.ts(&ctx, TsCall::Query(args.sql)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_and_busy_answers_keep_their_message_and_code() {
        let quota = "this write would store 5 new records, but your tenant already stores 6 of \
                     the 10 records its quota allows (max_points): 4 more fit";
        let direct = explain_ts(TsError::QuotaExceeded(quota.into()));
        assert_eq!(direct, format!("Quota exceeded: {quota} (quota_exceeded)"));
        let through_api = explain_ts_api(format!(
            "the Memory API is unavailable: HTTP 429 Too Many Requests: {quota}. Try again shortly."
        ));
        assert_eq!(through_api, direct, "both profiles say the same");

        let busy = "the server is busy: 2 time-series reads are running and 64 are waiting";
        let direct = explain_ts(TsError::Busy(busy.into()));
        assert!(
            direct.ends_with("(busy)") && direct.contains(busy),
            "{direct}"
        );
        assert_eq!(
            explain_ts_api(format!(
                "the Memory API is unavailable: HTTP 503 Service Unavailable: {busy}. Try again shortly."
            )),
            direct
        );

        // Other 503s (a store that is down, no store at all) keep the generic text.
        let down = "the Memory API is unavailable: HTTP 503 Service Unavailable: the time-series \
                    store is unavailable; retry shortly. Try again shortly.";
        assert_eq!(explain_ts_api(down.into()), down);
        let deadline = explain_ts(TsError::Limit(
            "the read did not finish within its deadline of 10 s: ask for less".into(),
        ));
        assert!(deadline.ends_with("(limit_exceeded)"), "{deadline}");
    }
}
