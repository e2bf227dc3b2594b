//! Timestream Query answers (ColumnInfo + Rows of Datum, over NextToken pages) as a plain table
//! of typed cells, and from there as Membrain's series and points.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_timestreamquery::operation::query::QueryOutput;
use aws_sdk_timestreamquery::types::ScalarType;
use chrono::NaiveDateTime;
use membrain_timeseries::{
    AttributeName, Dimensions, MeasureType, MeasureValue, Point, SeriesPoints, Timestamp, TsError,
};

/// The rows of one query, over all its pages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryTable {
    columns: Vec<(String, Option<ScalarType>)>,
    positions: HashMap<String, usize>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl QueryTable {
    /// Adds a page. Pages of one query share their columns; the first page with columns names them.
    pub fn push_page(&mut self, page: &QueryOutput) -> Result<(), TsError> {
        if self.columns.is_empty() && !page.column_info().is_empty() {
            self.columns = page
                .column_info()
                .iter()
                .map(|column| {
                    let name = column.name().unwrap_or_default().to_owned();
                    let kind = column.r#type().and_then(|kind| kind.scalar_type()).cloned();
                    (name, kind)
                })
                .collect();
            self.positions = self
                .columns
                .iter()
                .enumerate()
                .map(|(index, (name, _))| (name.clone(), index))
                .collect();
        }
        for row in page.rows() {
            if row.data().len() != self.columns.len() {
                return Err(TsError::Internal(format!(
                    "Timestream answered a row of {} values for {} columns",
                    row.data().len(),
                    self.columns.len()
                )));
            }
            let cells = row
                .data()
                .iter()
                .map(|datum| {
                    if datum.null_value() == Some(true) {
                        None
                    } else {
                        datum.scalar_value().map(str::to_owned)
                    }
                })
                .collect();
            self.rows.push(cells);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The typed value of `column` in row `row`; `None` when it is NULL or not in the answer.
    pub fn value(&self, row: usize, column: &str) -> Result<Option<MeasureValue>, TsError> {
        let Some(&index) = self.positions.get(column) else {
            return Ok(None);
        };
        let Some(text) = &self.rows[row][index] else {
            return Ok(None);
        };
        let kind = self.columns[index].1.as_ref();
        parse_scalar(text, kind)
            .map(Some)
            .ok_or_else(|| {
                TsError::Internal(format!(
                    "Timestream answered {text:?} for column {column} of type {kind:?}, which Membrain cannot read"
                ))
            })
    }

    pub fn time(&self, row: usize, column: &str) -> Result<Option<Timestamp>, TsError> {
        match self.value(row, column)? {
            None => Ok(None),
            Some(MeasureValue::Timestamp(time)) => Ok(Some(time)),
            Some(other) => Err(TsError::Internal(format!(
                "Timestream answered {other:?} for the time column {column}"
            ))),
        }
    }

    pub fn count(&self, row: usize, column: &str) -> Result<u64, TsError> {
        match self.value(row, column)? {
            None => Ok(0),
            Some(MeasureValue::Bigint(count)) => Ok(u64::try_from(count).unwrap_or(0)),
            Some(other) => Err(TsError::Internal(format!(
                "Timestream answered {other:?} for the count {column}"
            ))),
        }
    }

    /// Text cells of a row, by column name (for DESCRIBE's answer).
    pub fn text(&self, row: usize, column: &str) -> Option<&str> {
        let index = *self.positions.get(column)?;
        self.rows[row][index].as_deref()
    }

    /// Groups rows into series: dimensions from `dimensions`' columns (a NULL one is absent), the
    /// time from `time` (`fixed_time` when the answer has none, as for a whole-range aggregate),
    /// and the non-NULL `measures` (in the order given, which is by name). A row without a time
    /// or without any measure is no point. Series come sorted, points in time order.
    pub fn series(
        &self,
        dimensions: &[AttributeName],
        measures: &[(AttributeName, MeasureType)],
        fixed_time: Option<Timestamp>,
    ) -> Result<Vec<SeriesPoints>, TsError> {
        let mut grouped: BTreeMap<Dimensions, Vec<Point>> = BTreeMap::new();
        for row in 0..self.rows.len() {
            let time = match fixed_time {
                Some(time) => time,
                None => match self.time(row, "time")? {
                    Some(time) => time,
                    None => continue,
                },
            };
            let mut values = Vec::with_capacity(measures.len());
            for (name, _) in measures {
                if let Some(value) = self.value(row, name.as_str())? {
                    values.push((name.clone(), value));
                }
            }
            if values.is_empty() {
                continue;
            }
            let series = Dimensions::new(dimensions.iter().filter_map(|name| {
                self.text(row, name.as_str())
                    .map(|value| (name.clone(), value.to_owned()))
            }));
            grouped.entry(series).or_default().push(Point {
                time,
                measures: values,
            });
        }
        Ok(grouped
            .into_iter()
            .map(|(dimensions, mut points)| {
                points.sort_by_key(|point| point.time);
                SeriesPoints { dimensions, points }
            })
            .collect())
    }
}

/// A Timestream scalar as a Membrain value, by the column's type. A `count` of nothing is a
/// BIGINT 0 here; callers that fold treat it as no value (see `store.rs`).
fn parse_scalar(text: &str, kind: Option<&ScalarType>) -> Option<MeasureValue> {
    match kind? {
        ScalarType::Double => text.parse().ok().map(MeasureValue::Double),
        ScalarType::Bigint | ScalarType::Integer => text.parse().ok().map(MeasureValue::Bigint),
        ScalarType::Boolean => text.parse().ok().map(MeasureValue::Boolean),
        ScalarType::Varchar => Some(MeasureValue::Varchar(text.to_owned())),
        ScalarType::Timestamp => parse_timestamp(text).map(MeasureValue::Timestamp),
        _ => None,
    }
}

/// Timestream's timestamp text, `2026-11-26 14:05:00.123456789` (UTC); finer than microseconds
/// is dropped, as Membrain keeps microseconds.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|time| Timestamp::from_micros(time.and_utc().timestamp_micros()))
}
