//! The query model: latest values per series and time ranges with optional bins and
//! aggregates; their results; the limits that bound them. `plan_range` and `fold_range` are the
//! reference semantics every store follows (stores that fetch raw points call them directly).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    Accumulator, Aggregate, AttributeName, Bin, DatabaseName, Deadline, DimensionFilter,
    Dimensions, MeasureType, MeasureValue, Rejection, Span, TableRef, TableSchema, Timestamp,
    TsError,
};

/// Caps on what one read returns or reads. A result cut by a cap says `truncated: true`; a
/// request that could only be answered wrongly within a cap (too many buckets, an aggregate over
/// too many rows) is refused with a message saying how to narrow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadLimits {
    /// Series in one answer.
    pub max_series: usize,
    /// Points (records or buckets) in one answer, over all series.
    pub max_points: usize,
    /// Buckets one binned range may span (per series).
    pub max_buckets: usize,
    /// Rows a `ts_query` answer carries.
    pub max_query_rows: usize,
    /// Records a `ts_query` may read to compute its answer (and a SQL store may read for one
    /// aggregated range).
    pub max_scan_rows: usize,
    /// When this read must be done: set per call by the service; long loops look at it.
    pub deadline: Deadline,
    /// The reading tenant used more than its part of the CPU lately: a store that scans on its
    /// own threads runs this read's scan at low OS priority. Set per call by the service.
    pub low_priority: bool,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_series: 1_000,
            max_points: 10_000,
            max_buckets: 10_000,
            max_query_rows: 1_000,
            max_scan_rows: 2_000_000,
            deadline: Deadline::none(),
            low_priority: false,
        }
    }
}

/// A table as `ts_list_tables` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableSummary {
    pub database: DatabaseName,
    pub table: String,
    pub retention: String,
    pub created_at: Timestamp,
}

/// A measure's name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasureInfo {
    pub name: AttributeName,
    #[serde(rename = "type")]
    pub kind: MeasureType,
}

/// A table as `ts_describe_table` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableDescription {
    pub database: DatabaseName,
    pub table: String,
    pub retention: String,
    pub created_at: Timestamp,
    pub dimensions: Vec<AttributeName>,
    pub measures: Vec<MeasureInfo>,
    pub series_count: u64,
    pub row_count: u64,
    pub earliest: Option<Timestamp>,
    pub latest: Option<Timestamp>,
}

impl TableDescription {
    /// The description of a table from its schema and counts.
    pub fn new(
        table: &TableRef,
        retention: Span,
        created_at: Timestamp,
        schema: &TableSchema,
        series_count: u64,
        row_count: u64,
        span: Option<(Timestamp, Timestamp)>,
    ) -> Self {
        Self {
            database: table.database.clone(),
            table: table.table.to_string(),
            retention: retention.to_string(),
            created_at,
            dimensions: schema.dimensions.iter().cloned().collect(),
            measures: schema
                .measures
                .iter()
                .map(|(name, kind)| MeasureInfo {
                    name: name.clone(),
                    kind: *kind,
                })
                .collect(),
            series_count,
            row_count,
            earliest: span.map(|(earliest, _)| earliest),
            latest: span.map(|(_, latest)| latest),
        }
    }
}

/// What a write did: Timestream's `RecordsIngested` and `RejectedRecords`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriteOutcome {
    pub records_ingested: usize,
    pub rejected_records: Vec<Rejection>,
    /// Whether this write created the table (and its database).
    pub table_created: bool,
}

impl WriteOutcome {
    /// Adds rejections found before the store saw the batch (parse errors), in index order.
    pub fn with_rejections(mut self, mut earlier: Vec<Rejection>) -> Self {
        earlier.append(&mut self.rejected_records);
        earlier.sort_by_key(|rejection| rejection.record_index);
        self.rejected_records = earlier;
        self
    }
}

/// One time and its measures (a record, or an aggregated bucket whose time is its start).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub time: Timestamp,
    pub measures: Vec<(AttributeName, MeasureValue)>,
}

impl Serialize for Point {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("time", &self.time)?;
        let measures: BTreeMap<&str, &MeasureValue> = self
            .measures
            .iter()
            .map(|(name, value)| (name.as_str(), value))
            .collect();
        map.serialize_entry("measures", &measures)?;
        map.end()
    }
}

/// A series and some of its points, in time order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoints {
    pub dimensions: Dimensions,
    pub points: Vec<Point>,
}

/// The latest value of each matching series.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestQuery {
    pub table: TableRef,
    pub dimensions: DimensionFilter,
    /// Only this measure: the latest record that has it.
    pub measure: Option<AttributeName>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatestResult {
    /// One entry per series, with exactly one point: its latest.
    pub series: Vec<SeriesPoints>,
    pub truncated: bool,
}

impl LatestResult {
    /// The answer for `series`, cut to the read limits.
    pub fn capped(series: Vec<SeriesPoints>, limits: &ReadLimits) -> Self {
        let (series, truncated) = cap_series(series, limits);
        Self { series, truncated }
    }
}

/// The records of matching series in `[start, end)`, or their aggregates per bin.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    pub table: TableRef,
    pub start: Timestamp,
    pub end: Timestamp,
    pub dimensions: DimensionFilter,
    pub measure: Option<AttributeName>,
    pub bin: Option<Bin>,
    pub aggregate: Option<Aggregate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangeResult {
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
    pub series: Vec<SeriesPoints>,
    pub truncated: bool,
}

/// Which measures a read returns, checked against the table.
pub fn select_measures(
    table: &TableRef,
    schema: &TableSchema,
    measure: Option<&AttributeName>,
) -> Result<Vec<(AttributeName, MeasureType)>, TsError> {
    match measure {
        None => Ok(schema
            .measures
            .iter()
            .map(|(name, kind)| (name.clone(), *kind))
            .collect()),
        Some(name) => match schema.measures.get(name) {
            Some(kind) => Ok(vec![(name.clone(), *kind)]),
            None => Err(TsError::invalid(
                "measure",
                format!(
                    "table {table} has no measure {name}; its measures are: {}",
                    join_names(schema.measures.keys())
                ),
            )),
        },
    }
}

fn join_names<'a>(names: impl Iterator<Item = &'a AttributeName>) -> String {
    let names: Vec<&str> = names.map(AttributeName::as_str).collect();
    if names.is_empty() {
        "(none yet)".into()
    } else {
        names.join(", ")
    }
}

/// A range query checked against its table: the measures it reads and how it folds them.
#[derive(Debug, Clone, PartialEq)]
pub struct RangePlan {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Measures to return, each with the aggregate applied to it (when aggregating).
    pub measures: Vec<(AttributeName, MeasureType)>,
    /// `Some` when the answer is buckets: their width (`None` = one bucket for the whole range)
    /// and the aggregate.
    pub folding: Option<(Option<Bin>, Aggregate)>,
}

impl RangePlan {
    /// The answer for `series` (already folded by this plan), cut to the read limits.
    pub fn answer(&self, series: Vec<SeriesPoints>, limits: &ReadLimits) -> RangeResult {
        let (series, truncated) = cap_series(series, limits);
        RangeResult {
            start: self.start,
            end: self.end,
            bin: self
                .folding
                .and_then(|(bin, _)| bin)
                .map(|bin| bin.to_string()),
            aggregate: self.folding.map(|(_, aggregate)| aggregate),
            series,
            truncated,
        }
    }

    /// The bucket a time falls in (its start), when folding.
    pub fn bucket_of(&self, time: Timestamp) -> Timestamp {
        match self.folding {
            Some((Some(bin), _)) => time.bin_start(bin),
            _ => self.start,
        }
    }
}

/// Checks a range query against its table and limits. A bin without an aggregate means `avg`;
/// an aggregate without a bin folds the whole range into one bucket. Numeric aggregates apply to
/// numeric measures: naming another measure is an error, leaving the measure out skips them.
pub fn plan_range(
    query: &RangeQuery,
    schema: &TableSchema,
    limits: &ReadLimits,
) -> Result<RangePlan, TsError> {
    if query.start >= query.end {
        return Err(TsError::invalid(
            "start",
            format!("start ({}) must be before end ({})", query.start, query.end),
        ));
    }
    let mut measures = select_measures(&query.table, schema, query.measure.as_ref())?;
    let folding = match (query.bin, query.aggregate) {
        (None, None) => None,
        (bin, aggregate) => Some((bin, aggregate.unwrap_or(Aggregate::Avg))),
    };
    if let Some((bin, aggregate)) = folding {
        if let Some(bin) = bin {
            let first = query.start.bin_start(bin).as_micros();
            let span = i128::from(query.end.as_micros()) - i128::from(first);
            let buckets = (span + i128::from(bin.as_micros()) - 1) / i128::from(bin.as_micros());
            if buckets > limits.max_buckets as i128 {
                return Err(TsError::Limit(format!(
                    "bin {bin} over {} to {} makes {buckets} buckets; the limit is {}: use a wider \
                     bin or a shorter range",
                    query.start, query.end, limits.max_buckets
                )));
            }
        }
        if let Some(name) = &query.measure
            && let Some((_, kind)) = measures.first()
            && !aggregate.applies_to(*kind)
        {
            return Err(TsError::invalid(
                "aggregate",
                format!(
                    "{aggregate} needs a numeric measure but {name} is {kind}: use count, first or last"
                ),
            ));
        }
        measures.retain(|(_, kind)| aggregate.applies_to(*kind));
    }
    Ok(RangePlan {
        start: query.start,
        end: query.end,
        measures,
        folding,
    })
}

/// Applies a plan to one series' records (in any order; only those in `[start, end)` count):
/// the records themselves, sorted by time and reduced to the plan's measures, or one point per
/// non-empty bucket. Records without any of the plan's measures are left out.
pub fn fold_range<'a>(
    plan: &RangePlan,
    records: impl IntoIterator<Item = (Timestamp, &'a [(AttributeName, MeasureValue)])>,
) -> Vec<Point> {
    let in_range = records
        .into_iter()
        .filter(|(time, _)| *time >= plan.start && *time < plan.end);
    let Some((_, aggregate)) = plan.folding else {
        let mut points: Vec<Point> = in_range
            .filter_map(|(time, measures)| {
                let kept = keep_measures(plan, measures);
                (!kept.is_empty()).then_some(Point {
                    time,
                    measures: kept,
                })
            })
            .collect();
        points.sort_by_key(|point| point.time);
        return points;
    };
    let mut buckets: BTreeMap<Timestamp, Vec<Accumulator>> = BTreeMap::new();
    for (time, measures) in in_range {
        let accumulators = buckets
            .entry(plan.bucket_of(time))
            .or_insert_with(|| vec![Accumulator::new(aggregate); plan.measures.len()]);
        for (slot, (name, _)) in plan.measures.iter().enumerate() {
            if let Ok(index) = measures.binary_search_by(|(key, _)| key.cmp(name)) {
                accumulators[slot].push(time, &measures[index].1);
            }
        }
    }
    buckets
        .into_iter()
        .filter_map(|(time, accumulators)| {
            let measures: Vec<(AttributeName, MeasureValue)> = plan
                .measures
                .iter()
                .zip(&accumulators)
                .filter_map(|((name, _), accumulator)| {
                    accumulator.finish().map(|value| (name.clone(), value))
                })
                .collect();
            (!measures.is_empty()).then_some(Point { time, measures })
        })
        .collect()
}

fn keep_measures(
    plan: &RangePlan,
    measures: &[(AttributeName, MeasureValue)],
) -> Vec<(AttributeName, MeasureValue)> {
    measures
        .iter()
        .filter(|(name, _)| plan.measures.iter().any(|(wanted, _)| wanted == name))
        .cloned()
        .collect()
}

/// Cuts series and points to the read limits, saying whether anything was cut.
pub fn cap_series(mut series: Vec<SeriesPoints>, limits: &ReadLimits) -> (Vec<SeriesPoints>, bool) {
    let mut truncated = false;
    if series.len() > limits.max_series {
        series.truncate(limits.max_series);
        truncated = true;
    }
    let mut budget = limits.max_points;
    series.retain_mut(|entry| {
        if budget == 0 {
            truncated = true;
            return false;
        }
        if entry.points.len() > budget {
            entry.points.truncate(budget);
            truncated = true;
        }
        budget -= entry.points.len();
        true
    });
    (series, truncated)
}
