//! `ts_query`: a read-only SQL subset over one of the caller's tables, Timestream-flavoured.
//!
//! No caller text ever reaches a database: the query is parsed (by `sqlparser`) into Membrain's
//! own plan, the store returns raw records through [`TimeSeriesStore::scan`], and the filtering,
//! grouping, aggregation and ordering happen here, in memory. Time-range and dimension-equality
//! conditions ANDed at the top of `WHERE` are pushed into the [`Scan`], so
//! `WHERE time > ago(1h)` reads an hour of records, not the table.
//!
//! What is accepted:
//!
//! * one `SELECT` over one table named `database.table` (quote odd names: `"my-db"."t"`);
//! * result items: `*`, `time`, dimension and measure names, `bin(time, 5m)`, arithmetic
//!   (`speed * 3.6`, `time - 1h`), the aggregates `avg`, `min`, `max`, `sum`, `count(*)`,
//!   `count(x)`, `first(x)`, `last(x)` (by time), `max_by(x, y)` and `min_by(x, y)`; `AS alias`;
//! * `WHERE` with `AND`/`OR`/`NOT`, `= <> != < <= > >=`, `BETWEEN`, `IN (…)`, `IS [NOT] NULL`,
//!   `LIKE` with a constant pattern (`%` and `_`; at most [`MAX_LIKE_PATTERN_CHARS`]
//!   characters, compiled once per query and matched in linear time);
//! * literals: numbers, `'strings'`, `true`/`false`, `NULL`, durations `1s 5m 1h 1d`, times as
//!   `'2026-11-26T14:00:00Z'` (compared with a time) or `from_iso8601_timestamp('…')`, `now()`,
//!   `ago(1h)`, `now() - 1h`;
//! * `GROUP BY` columns and `bin(time, …)` (or result aliases and ordinals), `ORDER BY` result
//!   columns (alias, name or ordinal) or any expression, `ASC`/`DESC`, `NULLS FIRST/LAST`;
//!   `LIMIT n`.
//!
//! ```sql
//! SELECT bin(time, 5m) AS minute, bus_id, avg(speed) AS avg_speed, max(speed)
//! FROM transit.bus_position
//! WHERE time > ago(1h) AND line_id = 'L3' AND speed IS NOT NULL
//! GROUP BY 1, bus_id
//! ORDER BY minute DESC, avg_speed DESC
//! LIMIT 100
//! ```
//!
//! Everything else is refused ([`TsError::Refused`], for writes, several statements, names
//! outside the caller's databases, system catalogues, unknown functions, subqueries, `JOIN`,
//! `UNION`) or rejected as unsupported ([`TsError::Invalid`]), each with a message saying what is
//! allowed. A record without a measure reads it as `NULL`. Results carry at most
//! [`ReadLimits::max_query_rows`] rows (`truncated: true` when more matched); the store refuses a
//! scan over [`ReadLimits::max_scan_rows`] records; evaluation gives up at
//! [`ReadLimits::deadline`] (it runs on a blocking thread, which no caller can cancel).
//!
//! The [`Scan`] asks for the measures the query names; a store returns every record of the
//! range and series with those of the named measures it has (possibly none). It asks for every
//! measure when the query selects `*`, counts rows (`count(*)`) or names no measure.

mod expr;
mod parse;
mod plan;
mod value;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use membrain_memory::TenantId;
use serde::Serialize;

use crate::{
    Accumulator, ReadLimits, Scan, SeriesPoints, TableRef, TableSchema, TimeSeriesStore, Timestamp,
    TsError,
};

use expr::{AggregateFunction, Expr, Row, eval};
pub use parse::MAX_SQL_BYTES;
use plan::{Plan, SortKey};
use value::{GroupKey, Value};
pub use value::{MAX_LIKE_PATTERN_CHARS, SqlType};

/// A parsed `ts_query`: valid SQL of the subset, not yet checked against its table.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlQuery {
    table: TableRef,
    projection: Vec<SelectItem>,
    filter: Option<Expr>,
    group_by: Vec<Expr>,
    order_by: Vec<OrderItem>,
    limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum SelectItem {
    Wildcard,
    Expr {
        expr: Expr,
        /// The alias, or the expression's SQL text.
        name: String,
        aliased: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct OrderItem {
    expr: Expr,
    descending: bool,
    nulls_first: Option<bool>,
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SqlType,
}

/// A `ts_query` answer: rows of JSON values in column order (times as RFC 3339 strings).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Whether more rows matched than [`ReadLimits::max_query_rows`] lets through.
    pub truncated: bool,
    /// Records the store returned for the query to read.
    pub rows_scanned: u64,
}

/// Parses `sql` into a query of the subset, or says why it is refused or unsupported.
pub fn parse(sql: &str) -> Result<SqlQuery, TsError> {
    parse::parse(sql)
}

/// Parses, reads and answers `sql` over the tenant's table, with one clock reading for the
/// whole query. Evaluation runs where this is polled; a server runs [`SqlQuery::execute`] on a
/// blocking thread instead (`membrain-ts-service`).
pub async fn run(
    store: &dyn TimeSeriesStore,
    tenant: &TenantId,
    sql: &str,
    limits: &ReadLimits,
) -> Result<QueryResult, TsError> {
    let query = parse(sql)?;
    let meta = store.table_meta(tenant, query.table()).await?;
    let now = Timestamp::now();
    let scan = query.scan(&meta.schema, now)?;
    let series = store.scan(tenant, &scan, limits).await?;
    query.execute(&meta.schema, series, now, limits)
}

impl SqlQuery {
    /// The table the query reads.
    pub fn table(&self) -> &TableRef {
        &self.table
    }

    /// What to ask the store for: the query checked against its table, with the conditions a
    /// store can apply (time range, dimension equality) and the measures it needs.
    pub fn scan(&self, schema: &TableSchema, now: Timestamp) -> Result<Scan, TsError> {
        Ok(Plan::new(self, schema, now)?.scan(&self.table))
    }

    /// Answers the query over the records a store returned for [`scan`](Self::scan) (records
    /// outside the scan are filtered out here too: the whole `WHERE` clause is applied). Gives
    /// up with the deadline's error once [`ReadLimits::deadline`] has passed.
    pub fn execute(
        &self,
        schema: &TableSchema,
        series: Vec<SeriesPoints>,
        now: Timestamp,
        limits: &ReadLimits,
    ) -> Result<QueryResult, TsError> {
        let plan = Plan::new(self, schema, now)?;
        let mut ticker = limits.deadline.ticker();
        let rows_scanned = series.iter().map(|entry| entry.points.len() as u64).sum();
        let records = series.iter().flat_map(|entry| {
            entry.points.iter().map(|point| Row {
                time: Some(point.time),
                dimensions: Some(&entry.dimensions),
                measures: &point.measures,
                ..Row::default()
            })
        });
        let wanted = |row: &Row<'_>| match &plan.filter {
            None => Ok(true),
            Some(filter) => Ok(eval(filter, row, now)?.truth() == Some(true)),
        };
        let mut rows: Vec<Vec<Value>> = Vec::new();
        match &plan.grouping {
            None => {
                // Unordered answers stop reading once they know whether the cap cuts them.
                let enough = match plan.order.is_empty() {
                    true => plan
                        .limit
                        .unwrap_or(usize::MAX)
                        .min(limits.max_query_rows.saturating_add(1)),
                    false => usize::MAX,
                };
                for row in records {
                    if rows.len() >= enough {
                        break;
                    }
                    ticker.tick()?;
                    if wanted(&row)? {
                        rows.push(
                            plan.values
                                .iter()
                                .map(|value| eval(value, &row, now))
                                .collect::<Result<_, _>>()?,
                        );
                    }
                }
            }
            Some(grouping) => {
                let mut groups: BTreeMap<GroupKey, Vec<AggregateState>> = BTreeMap::new();
                for row in records {
                    ticker.tick()?;
                    if !wanted(&row)? {
                        continue;
                    }
                    let key = grouping
                        .keys
                        .iter()
                        .map(|key| eval(key, &row, now))
                        .collect::<Result<Vec<_>, _>>()?;
                    let states = groups.entry(GroupKey(key)).or_insert_with(|| {
                        grouping
                            .aggregates
                            .iter()
                            .map(|(function, _)| AggregateState::new(*function))
                            .collect()
                    });
                    for (state, (_, args)) in states.iter_mut().zip(&grouping.aggregates) {
                        let args = args
                            .iter()
                            .map(|arg| eval(arg, &row, now))
                            .collect::<Result<Vec<_>, _>>()?;
                        state.push(row.time, &args);
                    }
                }
                // An aggregate without GROUP BY answers one row even over no records.
                if groups.is_empty() && grouping.keys.is_empty() {
                    let states = grouping
                        .aggregates
                        .iter()
                        .map(|(function, _)| AggregateState::new(*function))
                        .collect();
                    groups.insert(GroupKey(Vec::new()), states);
                }
                for (GroupKey(keys), states) in groups {
                    let aggregates: Vec<Value> =
                        states.iter().map(AggregateState::finish).collect();
                    let row = Row {
                        group_keys: &keys,
                        aggregates: &aggregates,
                        ..Row::default()
                    };
                    rows.push(
                        plan.values
                            .iter()
                            .map(|value| eval(value, &row, now))
                            .collect::<Result<_, _>>()?,
                    );
                }
            }
        }
        if !plan.order.is_empty() {
            // A sort cannot stop half-way: look at the clock before it.
            limits.deadline.check()?;
            rows.sort_by(|a, b| compare_rows(&plan.order, a, b));
        }
        if let Some(limit) = plan.limit {
            rows.truncate(limit);
        }
        let truncated = rows.len() > limits.max_query_rows;
        rows.truncate(limits.max_query_rows);
        let width = plan.columns.len();
        Ok(QueryResult {
            columns: plan.columns,
            rows: rows
                .into_iter()
                .map(|row| row[..width].iter().map(Value::to_json).collect())
                .collect(),
            truncated,
            rows_scanned,
        })
    }
}

fn compare_rows(order: &[SortKey], a: &[Value], b: &[Value]) -> Ordering {
    for key in order {
        let (left, right) = (&a[key.index], &b[key.index]);
        let ordering = match (*left == Value::Null, *right == Value::Null) {
            (true, true) => Ordering::Equal,
            (true, false) if key.nulls_first => Ordering::Less,
            (true, false) => Ordering::Greater,
            (false, true) if key.nulls_first => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) if key.descending => right.total_cmp(left),
            (false, false) => left.total_cmp(right),
        };
        if ordering.is_ne() {
            return ordering;
        }
    }
    Ordering::Equal
}

/// One aggregate over one group.
enum AggregateState {
    /// The shared aggregates; `count` answers 0 over no values.
    Shared(Accumulator, bool),
    CountRows(i64),
    /// `max_by`/`min_by`: the value at the best rank so far (the earliest on ties).
    Ranked {
        best: Option<(Value, Value)>,
        keep_greatest: bool,
    },
}

impl AggregateState {
    fn new(function: AggregateFunction) -> Self {
        match function {
            AggregateFunction::Shared(aggregate) => Self::Shared(
                Accumulator::new(aggregate),
                aggregate == crate::Aggregate::Count,
            ),
            AggregateFunction::CountRows => Self::CountRows(0),
            AggregateFunction::MaxBy | AggregateFunction::MinBy => Self::Ranked {
                best: None,
                keep_greatest: function == AggregateFunction::MaxBy,
            },
        }
    }

    fn push(&mut self, time: Option<Timestamp>, args: &[Value]) {
        match self {
            Self::CountRows(count) => *count += 1,
            Self::Shared(accumulator, _) => {
                if let (Some(time), Some(value)) = (time, args.first().and_then(Value::to_measure))
                {
                    accumulator.push(time, &value);
                }
            }
            Self::Ranked {
                best,
                keep_greatest,
            } => {
                let [value, rank] = args else { return };
                if *rank == Value::Null {
                    return;
                }
                let better = match best {
                    None => true,
                    Some((best_rank, _)) => match rank.sql_cmp(best_rank) {
                        Some(Ordering::Greater) => *keep_greatest,
                        Some(Ordering::Less) => !*keep_greatest,
                        _ => false,
                    },
                };
                if better {
                    *best = Some((rank.clone(), value.clone()));
                }
            }
        }
    }

    fn finish(&self) -> Value {
        match self {
            Self::CountRows(count) => Value::Bigint(*count),
            Self::Shared(accumulator, is_count) => match accumulator.finish() {
                Some(value) => Value::from(&value),
                None if *is_count => Value::Bigint(0),
                None => Value::Null,
            },
            Self::Ranked { best, .. } => best
                .as_ref()
                .map_or(Value::Null, |(_, value)| value.clone()),
        }
    }
}
