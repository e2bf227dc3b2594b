//! The time-series pages: the tenant's tables, and one table's description, latest values and a
//! chart of a range whose bins and aggregate are chosen in a GET form.
//!
//! The API answers time series with the time-series domain's types, which are written but not
//! read back; the console reads the parts it shows into the small views below.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, PreEscaped, html};
use membrain_contract::ts::{LatestBody, RangeBody};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{path_segment, tenant_key};
use crate::ConsoleState;
use crate::chart::{ChartLine, PALETTE, line_chart};
use crate::error::ConsoleError;
use crate::layout::page;
use crate::security::{ConsoleQuery, SignedIn, html_response};

/// The aggregates a binned range may ask for.
const AGGREGATES: [&str; 7] = ["avg", "min", "max", "sum", "count", "first", "last"];

/// The most lines one chart draws (series × measures); the legend says when more were left out.
const MAX_LINES: usize = 16;

#[derive(Debug, Deserialize)]
struct TablesView {
    tables: Vec<TableRow>,
}

#[derive(Debug, Deserialize)]
struct TableRow {
    database: String,
    table: String,
    retention: String,
}

#[derive(Debug, Deserialize)]
struct DescriptionView {
    retention: String,
    dimensions: Vec<String>,
    measures: Vec<MeasureView>,
    series_count: u64,
    row_count: u64,
    earliest: Option<String>,
    latest: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MeasureView {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct SeriesSetView {
    series: Vec<SeriesView>,
    truncated: bool,
}

#[derive(Debug, Deserialize)]
struct SeriesView {
    dimensions: BTreeMap<String, String>,
    points: Vec<PointView>,
}

#[derive(Debug, Deserialize)]
struct PointView {
    time: String,
    #[serde(default)]
    measures: BTreeMap<String, Value>,
}

impl SeriesView {
    fn label(&self) -> String {
        if self.dimensions.is_empty() {
            return "(no dimensions)".to_owned();
        }
        self.dimensions
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `GET /console/series`.
pub async fn tables(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
) -> Result<Response, ConsoleError> {
    let key = tenant_key(&signed_in)?;
    let answer: TablesView = state.api.get(key, &["ts", "tables"], None::<&()>).await?;
    let body = html! {
        @if answer.tables.is_empty() {
            p class="empty" { "No time-series tables yet (`membrain ts demo transit` writes a demo)." }
        } @else {
            table {
                thead { tr { th { "Database" } th { "Table" } th { "Retention" } } }
                tbody {
                    @for row in &answer.tables {
                        tr {
                            td { (row.database) }
                            td { a class="table-link" href=(table_href(&row.database, &row.table)) { (row.table) } }
                            td { (row.retention) }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(page(
        "Time series",
        Some((&signed_in.session).into()),
        body,
    )))
}

fn table_href(database: &str, table: &str) -> String {
    format!(
        "/console/series/{}/{}",
        path_segment(database),
        path_segment(table)
    )
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RangeParams {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    bin: Option<String>,
    #[serde(default)]
    aggregate: Option<String>,
    #[serde(default)]
    measure: Option<String>,
}

fn filled(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `GET /console/series/{database}/{table}?start=&end=&bin=&aggregate=&measure=`.
pub async fn table(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path((database, table)): Path<(String, String)>,
    ConsoleQuery(params): ConsoleQuery<RangeParams>,
) -> Result<Response, ConsoleError> {
    let key = tenant_key(&signed_in)?;
    let segments = ["ts", "tables", database.as_str(), table.as_str()];
    let description: DescriptionView = state.api.get(key, &segments, None::<&()>).await?;
    let latest_segments = ["ts", "tables", database.as_str(), table.as_str(), "latest"];
    let latest: SeriesSetView = state
        .api
        .post(
            key,
            &latest_segments,
            &LatestBody {
                dimensions: None,
                measure: None,
            },
        )
        .await?;

    // The range defaults to everything the table holds, raw.
    let start = filled(&params.start).or_else(|| description.earliest.clone());
    let end = filled(&params.end).or_else(|| description.latest.as_deref().map(just_after));
    let bin = filled(&params.bin);
    let aggregate = filled(&params.aggregate).or_else(|| bin.as_ref().map(|_| "avg".to_owned()));
    let measure = filled(&params.measure);
    let range = match (&start, &end) {
        (Some(start), Some(end)) => {
            let body = RangeBody {
                start: start.clone(),
                end: end.clone(),
                dimensions: None,
                measure: measure.clone(),
                bin: bin.clone(),
                aggregate: aggregate.clone(),
            };
            let range_segments = ["ts", "tables", database.as_str(), table.as_str(), "range"];
            Some(
                state
                    .api
                    .post::<SeriesSetView>(key, &range_segments, &body)
                    .await?,
            )
        }
        _ => None,
    };
    let numeric: Vec<&MeasureView> = description
        .measures
        .iter()
        .filter(|m| matches!(m.kind.as_str(), "double" | "bigint"))
        .collect();
    let body = html! {
        dl class="facts" {
            dt { "Database" } dd { (database) }
            dt { "Retention" } dd { (description.retention) }
            dt { "Dimensions" } dd { (description.dimensions.join(", ")) }
            dt { "Measures" } dd {
                @for (i, m) in description.measures.iter().enumerate() {
                    @if i > 0 { ", " } (m.name) " (" (m.kind) ")"
                }
            }
            dt { "Series" } dd { (description.series_count) }
            dt { "Records" } dd { (description.row_count) }
            dt { "From" } dd { (description.earliest.clone().unwrap_or_else(|| "—".into())) }
            dt { "To" } dd { (description.latest.clone().unwrap_or_else(|| "—".into())) }
        }
        h2 { "Latest values" }
        (latest_table(&latest))
        h2 { "Range" }
        form method="get" action=(table_href(&database, &table)) class="range" id="range-form" {
            label { "From " input type="text" name="start" value=(start.clone().unwrap_or_default()) placeholder="2026-12-01T00:00:00Z"; }
            label { "To " input type="text" name="end" value=(end.clone().unwrap_or_default()) placeholder="2026-12-02T00:00:00Z"; }
            label { "Bins " input type="text" name="bin" value=(bin.clone().unwrap_or_default()) placeholder="raw, or 1m, 1h, 1d"; }
            label { "Aggregate "
                select name="aggregate" {
                    @for a in AGGREGATES {
                        option value=(a) selected[aggregate.as_deref() == Some(a)] { (a) }
                    }
                }
            }
            label { "Measure "
                select name="measure" {
                    option value="" selected[measure.is_none()] { "all" }
                    @for m in &numeric {
                        option value=(m.name) selected[measure.as_deref() == Some(m.name.as_str())] { (m.name) }
                    }
                }
            }
            button type="submit" id="draw" { "Draw" }
        }
        @if let Some(range) = &range {
            (chart(range))
        } @else {
            p class="empty" { "The table holds no records yet." }
        }
    };
    Ok(html_response(page(
        &table,
        Some((&signed_in.session).into()),
        body,
    )))
}

/// One second after `time` (an RFC 3339 time), so a range's exclusive end includes it.
fn just_after(time: &str) -> String {
    DateTime::parse_from_rfc3339(time)
        .map(|t| {
            (t.with_timezone(&Utc) + chrono::Duration::seconds(1))
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        })
        .unwrap_or_else(|_| time.to_owned())
}

fn latest_table(latest: &SeriesSetView) -> Markup {
    html! {
        @if latest.series.is_empty() {
            p class="empty" { "No records." }
        } @else {
            table class="latest" {
                thead { tr { th { "Series" } th { "Time" } th { "Values" } } }
                tbody {
                    @for series in &latest.series {
                        @for point in &series.points {
                            tr {
                                td { (series.label()) }
                                td class="nowrap" { (point.time) }
                                td { (values_text(&point.measures)) }
                            }
                        }
                    }
                }
            }
            @if latest.truncated { p class="notice" { "More series than the API shows at once." } }
        }
    }
}

fn values_text(measures: &BTreeMap<String, Value>) -> String {
    measures
        .iter()
        .map(|(name, value)| match value {
            Value::String(text) => format!("{name}={text}"),
            other => format!("{name}={other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The chart of a range, one line per series and numeric measure, with an HTML legend.
fn chart(range: &SeriesSetView) -> Markup {
    let mut lines = Vec::new();
    let mut legend = Vec::new();
    let mut left_out = 0usize;
    for series in &range.series {
        let measures: std::collections::BTreeSet<&String> = series
            .points
            .iter()
            .flat_map(|p| p.measures.iter())
            .filter(|(_, v)| v.is_number())
            .map(|(name, _)| name)
            .collect();
        for measure in measures {
            if lines.len() == MAX_LINES {
                left_out += 1;
                continue;
            }
            let points: Vec<(i64, f64)> = series
                .points
                .iter()
                .filter_map(|p| {
                    let time = DateTime::parse_from_rfc3339(&p.time)
                        .ok()?
                        .timestamp_micros();
                    let value = p.measures.get(measure)?.as_f64()?;
                    Some((time, value))
                })
                .collect();
            legend.push(format!("{} · {measure}", series.label()));
            lines.push(ChartLine { points });
        }
    }
    let drawn = line_chart(&lines, 860, 360);
    html! {
        @match drawn {
            Ok(Some(svg)) => {
                figure class="chart" id="chart" {
                    // plotters escapes its text, and only our numbers and times reach it.
                    (PreEscaped(svg))
                    figcaption {
                        ul class="legend" {
                            @for (i, label) in legend.iter().enumerate() {
                                li {
                                    svg width="12" height="12" aria-hidden="true" { rect width="12" height="12" fill=(PALETTE[i % PALETTE.len()]) {} }
                                    " " (label)
                                }
                            }
                        }
                        @if left_out > 0 { p class="notice" { (left_out) " more lines were left out; choose a measure." } }
                        @if range.truncated { p class="notice" { "The API cut this range at its bound; choose a shorter range or wider bins." } }
                    }
                }
            }
            Ok(None) => p class="empty" { "No numeric values in this range." },
            Err(error) => p class="error" { "The chart could not be drawn: " (error) },
        }
    }
}
