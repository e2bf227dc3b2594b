//! `membrain ts …`: time series through the REST API — tables, latest values, ranges, SQL,
//! retention, import/export and demo data. Each command is a client of `/api/v1/ts/…` with the
//! caller's key, so it works the same against `membrain serve` and a deployed API.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use membrain_auth::ApiKey;
use membrain_mcp::{ApiCall, ApiCallError, Caller, MemoryApi, MemoryApiClient};
use reqwest::Method;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::cli::{ApiClientArgs, TsArgs, TsCommand};
use crate::output::say;

mod transfer;

/// A REST client with the caller's key.
pub struct TsClient {
    api: MemoryApiClient,
    caller: Caller,
}

/// Long enough for a large batch on a busy server.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

impl TsClient {
    pub fn new(args: &ApiClientArgs) -> Result<Self> {
        let raw = args.api_key.as_deref().context(
            "no API key: set MEMBRAIN_API_KEY (or --api-key) to the key `membrain serve` printed, \
             or one from `membrain keys create`",
        )?;
        let key = ApiKey::new(raw).context("the API key is too short to be a Membrain key")?;
        let api = MemoryApiClient::new(&args.api_url, CALL_TIMEOUT).map_err(|e| anyhow!(e))?;
        Ok(Self {
            api,
            caller: Caller::new(key),
        })
    }

    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value> {
        let api: &dyn MemoryApi = &self.api;
        let mut call = ApiCall::new(method, segments).query(&query)?;
        if let Some(body) = &body {
            call = call.json(body)?;
        }
        api.request(&self.caller, call)
            .await
            .map_err(|error| match error {
                ApiCallError::Rejected { status: 401, .. } => anyhow!(
                    "the API refused the key (401): check MEMBRAIN_API_KEY and that it is not revoked"
                ),
                ApiCallError::Rejected { message, code, .. } => anyhow!("{message} ({code})"),
                other => anyhow!("{other} (API at {})", self.api.base_url()),
            })
    }

    /// `POST /ts/tables/{database}/{table}/{action}`.
    pub async fn table_call(&self, table: &TableName, action: &str, body: Value) -> Result<Value> {
        let path = ["ts", "tables", &table.database, &table.table, action];
        self.call(Method::POST, &path, &[], Some(body)).await
    }

    pub async fn describe(&self, table: &TableName) -> Result<Value> {
        let path = ["ts", "tables", &table.database, &table.table];
        self.call(Method::GET, &path, &[], None).await
    }
}

/// `DATABASE.TABLE` as typed on the command line.
#[derive(Debug, Clone)]
pub struct TableName {
    pub database: String,
    pub table: String,
}

impl TableName {
    pub fn parse(raw: &str) -> Result<Self> {
        match raw.split_once('.') {
            Some((database, table)) if !database.is_empty() && !table.is_empty() => Ok(Self {
                database: database.to_owned(),
                table: table.to_owned(),
            }),
            _ => bail!("{raw:?} is not DATABASE.TABLE (for example transit.bus_position)"),
        }
    }
}

fn dimension_filter(pairs: &[String]) -> Result<Value> {
    let mut map = Map::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--dimension {pair:?} is not NAME=VALUE"))?;
        map.insert(name.trim().to_owned(), Value::String(value.to_owned()));
    }
    Ok(Value::Object(map))
}

pub async fn run(args: TsArgs, shutdown: CancellationToken) -> Result<()> {
    let client = TsClient::new(&args.client)?;
    match args.command {
        TsCommand::Tables { database, json } => {
            let query: Vec<(&str, String)> =
                database.into_iter().map(|d| ("database", d)).collect();
            let answer = client
                .call(Method::GET, &["ts", "tables"], &query, None)
                .await?;
            if json {
                say!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            let tables = answer["tables"].as_array().cloned().unwrap_or_default();
            if tables.is_empty() {
                say!(
                    "No tables yet. Write records (membrain ts import, or membrain ts demo transit) to create one."
                );
                return Ok(());
            }
            let mut table = new_table(["DATABASE", "TABLE", "RETENTION", "CREATED"]);
            for entry in &tables {
                table.add_row([
                    text(&entry["database"]),
                    text(&entry["table"]),
                    text(&entry["retention"]),
                    text(&entry["created_at"]),
                ]);
            }
            say!("{table}");
        }
        TsCommand::Describe { table, json } => {
            let answer = client.describe(&TableName::parse(&table)?).await?;
            if json {
                say!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            print_description(&answer);
        }
        TsCommand::Latest {
            table,
            dimensions,
            measure,
            json,
        } => {
            let body = json!({ "dimensions": dimension_filter(&dimensions)?, "measure": measure });
            let answer = client
                .table_call(&TableName::parse(&table)?, "latest", body)
                .await?;
            print_series(&answer, json)?;
        }
        TsCommand::Range {
            table,
            start,
            end,
            dimensions,
            measure,
            bin,
            aggregate,
            json,
        } => {
            let body = json!({
                "start": start, "end": end, "dimensions": dimension_filter(&dimensions)?,
                "measure": measure, "bin": bin, "aggregate": aggregate,
            });
            let answer = client
                .table_call(&TableName::parse(&table)?, "range", body)
                .await?;
            print_series(&answer, json)?;
        }
        TsCommand::Query { sql, json } => {
            let answer = client
                .call(
                    Method::POST,
                    &["ts", "query"],
                    &[],
                    Some(json!({ "sql": sql })),
                )
                .await?;
            if json {
                say!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            let columns: Vec<String> = answer["columns"]
                .as_array()
                .map(|c| c.iter().map(|c| text(&c["name"])).collect())
                .unwrap_or_default();
            let mut table = new_table(columns);
            for row in answer["rows"].as_array().into_iter().flatten() {
                table.add_row(row.as_array().into_iter().flatten().map(text));
            }
            say!("{table}");
            if answer["truncated"].as_bool() == Some(true) {
                say!("(truncated: add LIMIT or narrow the WHERE clause)");
            }
        }
        TsCommand::Retention {
            table,
            retention,
            json,
        } => {
            let table = TableName::parse(&table)?;
            let path = ["ts", "tables", &table.database, &table.table, "retention"];
            let answer = client
                .call(
                    Method::PUT,
                    &path,
                    &[],
                    Some(json!({ "retention": retention })),
                )
                .await?;
            if json {
                say!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                say!(
                    "{}.{} keeps records for {} ({} rows now).",
                    table.database,
                    table.table,
                    text(&answer["retention"]),
                    text(&answer["row_count"])
                );
            }
        }
        TsCommand::Drop { table, yes } => {
            let table = TableName::parse(&table)?;
            if !yes {
                bail!(
                    "this deletes {}.{} and every record in it: add --yes to do it",
                    table.database,
                    table.table
                );
            }
            let path = ["ts", "tables", &table.database, &table.table];
            client.call(Method::DELETE, &path, &[], None).await?;
            say!("Dropped {}.{}.", table.database, table.table);
        }
        TsCommand::Import {
            table,
            file,
            format,
            dimensions,
            batch,
            json,
        } => {
            transfer::import(
                &client,
                &TableName::parse(&table)?,
                &file,
                format,
                &dimensions,
                batch,
                json,
                &shutdown,
            )
            .await?;
        }
        TsCommand::Export {
            table,
            format,
            output,
            start,
            end,
        } => {
            transfer::export(
                &client,
                &TableName::parse(&table)?,
                format,
                output.as_deref(),
                start,
                end,
            )
            .await?;
        }
        TsCommand::Demo(demo) => transfer::demo(&client, demo, &shutdown).await?,
    }
    Ok(())
}

fn new_table<T: Into<comfy_table::Cell>>(header: impl IntoIterator<Item = T>) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(header);
    table
}

/// A JSON value as a table cell: strings without quotes, absent as "-".
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn pairs(object: &Value) -> String {
    object
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn print_description(answer: &Value) {
    say!("{}.{}", text(&answer["database"]), text(&answer["table"]));
    say!("  retention   {}", text(&answer["retention"]));
    say!("  created     {}", text(&answer["created_at"]));
    say!("  series      {}", text(&answer["series_count"]));
    say!("  rows        {}", text(&answer["row_count"]));
    say!(
        "  time span   {} .. {}",
        text(&answer["earliest"]),
        text(&answer["latest"])
    );
    let dimensions: Vec<String> = answer["dimensions"]
        .as_array()
        .map(|d| d.iter().map(text).collect())
        .unwrap_or_default();
    say!("  dimensions  {}", dimensions.join(", "));
    let mut table = new_table(["MEASURE", "TYPE"]);
    for measure in answer["measures"].as_array().into_iter().flatten() {
        table.add_row([text(&measure["name"]), text(&measure["type"])]);
    }
    say!("{table}");
}

fn print_series(answer: &Value, json: bool) -> Result<()> {
    if json {
        say!("{}", serde_json::to_string_pretty(answer)?);
        return Ok(());
    }
    let mut table = new_table(["SERIES", "TIME", "MEASURES"]);
    let mut rows = 0;
    for series in answer["series"].as_array().into_iter().flatten() {
        let dimensions = pairs(&series["dimensions"]);
        for point in series["points"].as_array().into_iter().flatten() {
            table.add_row([
                dimensions.clone(),
                text(&point["time"]),
                pairs(&point["measures"]),
            ]);
            rows += 1;
        }
    }
    if rows == 0 {
        say!("No records match.");
    } else {
        say!("{table}");
    }
    if answer["truncated"].as_bool() == Some(true) {
        say!("(truncated: narrow the range, filter by dimension, or use a wider bin)");
    }
    Ok(())
}
