//! One table in memory: per series, a sorted time column and one typed column per measure, with
//! presence (a record may lack a measure). Reads fold these columns directly.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use membrain_timeseries::{
    Accumulator, AttributeName, DeadlineTicker, Dimensions, MeasureType, MeasureValue, Point,
    RangePlan, Record, TableDescription, TableMeta, Timestamp, TsError,
};

use crate::codec::{Decoder, Encoder};

/// The values of one measure in one series, one slot per row; a slot whose presence is false
/// holds a placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Values {
    Double(Vec<f64>),
    Bigint(Vec<i64>),
    Boolean(Vec<bool>),
    Varchar(Vec<String>),
    Timestamp(Vec<i64>),
}

impl Values {
    fn new(kind: MeasureType, rows: usize) -> Self {
        match kind {
            MeasureType::Double => Self::Double(vec![0.0; rows]),
            MeasureType::Bigint => Self::Bigint(vec![0; rows]),
            MeasureType::Boolean => Self::Boolean(vec![false; rows]),
            MeasureType::Varchar => Self::Varchar(vec![String::new(); rows]),
            MeasureType::Timestamp => Self::Timestamp(vec![0; rows]),
        }
    }

    fn get(&self, row: usize) -> MeasureValue {
        match self {
            Self::Double(values) => MeasureValue::Double(values[row]),
            Self::Bigint(values) => MeasureValue::Bigint(values[row]),
            Self::Boolean(values) => MeasureValue::Boolean(values[row]),
            Self::Varchar(values) => MeasureValue::Varchar(values[row].clone()),
            Self::Timestamp(values) => MeasureValue::Timestamp(Timestamp::from_micros(values[row])),
        }
    }

    fn equals(&self, row: usize, value: &MeasureValue) -> bool {
        match (self, value) {
            (Self::Double(values), MeasureValue::Double(value)) => values[row] == *value,
            (Self::Bigint(values), MeasureValue::Bigint(value)) => values[row] == *value,
            (Self::Boolean(values), MeasureValue::Boolean(value)) => values[row] == *value,
            (Self::Varchar(values), MeasureValue::Varchar(value)) => values[row] == *value,
            (Self::Timestamp(values), MeasureValue::Timestamp(value)) => {
                values[row] == value.as_micros()
            }
            _ => false,
        }
    }

    /// Inserts a placeholder at `row`.
    fn insert_absent(&mut self, row: usize) {
        match self {
            Self::Double(values) => values.insert(row, 0.0),
            Self::Bigint(values) => values.insert(row, 0),
            Self::Boolean(values) => values.insert(row, false),
            Self::Varchar(values) => values.insert(row, String::new()),
            Self::Timestamp(values) => values.insert(row, 0),
        }
    }

    /// Sets `row`; a value of another type (never admitted) is ignored.
    fn set(&mut self, row: usize, value: MeasureValue) -> bool {
        match (self, value) {
            (Self::Double(values), MeasureValue::Double(value)) => values[row] = value,
            (Self::Bigint(values), MeasureValue::Bigint(value)) => values[row] = value,
            (Self::Boolean(values), MeasureValue::Boolean(value)) => values[row] = value,
            (Self::Varchar(values), MeasureValue::Varchar(value)) => values[row] = value,
            (Self::Timestamp(values), MeasureValue::Timestamp(value)) => {
                values[row] = value.as_micros();
            }
            _ => return false,
        }
        true
    }

    fn drain_front(&mut self, rows: usize) {
        match self {
            Self::Double(values) => drop(values.drain(..rows)),
            Self::Bigint(values) => drop(values.drain(..rows)),
            Self::Boolean(values) => drop(values.drain(..rows)),
            Self::Varchar(values) => drop(values.drain(..rows)),
            Self::Timestamp(values) => drop(values.drain(..rows)),
        }
    }

    fn kind(&self) -> MeasureType {
        match self {
            Self::Double(_) => MeasureType::Double,
            Self::Bigint(_) => MeasureType::Bigint,
            Self::Boolean(_) => MeasureType::Boolean,
            Self::Varchar(_) => MeasureType::Varchar,
            Self::Timestamp(_) => MeasureType::Timestamp,
        }
    }

    fn encode(&self, out: &mut Encoder) {
        out.kind(self.kind());
        match self {
            Self::Double(values) => values.iter().for_each(|value| out.f64(*value)),
            Self::Bigint(values) | Self::Timestamp(values) => {
                values.iter().for_each(|value| out.i64(*value));
            }
            Self::Boolean(values) => values.iter().for_each(|value| out.u8(u8::from(*value))),
            Self::Varchar(values) => values.iter().for_each(|value| out.str(value)),
        }
    }

    fn decode(input: &mut Decoder<'_>, rows: usize) -> Result<Self, membrain_timeseries::TsError> {
        let kind = input.kind()?;
        Ok(match kind {
            MeasureType::Double => {
                let bytes = input.take(rows * 8)?;
                Self::Double(
                    bytes
                        .chunks_exact(8)
                        .map(|chunk| f64::from_le_bytes(chunk.try_into().unwrap_or_default()))
                        .collect(),
                )
            }
            MeasureType::Bigint | MeasureType::Timestamp => {
                let bytes = input.take(rows * 8)?;
                let values = bytes
                    .chunks_exact(8)
                    .map(|chunk| i64::from_le_bytes(chunk.try_into().unwrap_or_default()))
                    .collect();
                if kind == MeasureType::Bigint {
                    Self::Bigint(values)
                } else {
                    Self::Timestamp(values)
                }
            }
            MeasureType::Boolean => {
                Self::Boolean(input.take(rows)?.iter().map(|byte| *byte != 0).collect())
            }
            MeasureType::Varchar => Self::Varchar(
                (0..rows)
                    .map(|_| input.string())
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    present: Vec<bool>,
    values: Values,
}

impl Column {
    fn value(&self, row: usize) -> Option<MeasureValue> {
        self.present[row].then(|| self.values.get(row))
    }
}

/// One series: rows sorted by time, unique times.
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    times: Vec<i64>,
    /// Indexed by the table's measure slot; `None` until the series has that measure.
    columns: Vec<Option<Column>>,
}

impl Series {
    pub(crate) fn len(&self) -> usize {
        self.times.len()
    }

    fn row_of(&self, time: i64) -> Result<usize, usize> {
        match self.times.last() {
            Some(last) if *last < time => Err(self.times.len()),
            None => Err(0),
            _ => self.times.binary_search(&time),
        }
    }

    /// Rows with `start <= time < end`.
    pub(crate) fn rows(&self, start: i64, end: i64) -> Range<usize> {
        self.times.partition_point(|time| *time < start)
            ..self.times.partition_point(|time| *time < end)
    }

    fn column(&self, slot: usize) -> Option<&Column> {
        self.columns.get(slot).and_then(Option::as_ref)
    }

    /// Inserts a record's measures (by slot) at its time; the time must be new.
    fn insert(&mut self, row: usize, time: i64, measures: Vec<(usize, MeasureValue)>) {
        self.times.insert(row, time);
        for column in self.columns.iter_mut().flatten() {
            column.present.insert(row, false);
            column.values.insert_absent(row);
        }
        for (slot, value) in measures {
            if self.columns.len() <= slot {
                self.columns.resize(slot + 1, None);
            }
            let rows = self.times.len();
            let column = self.columns[slot].get_or_insert_with(|| Column {
                present: vec![false; rows],
                values: Values::new(value.kind(), rows),
            });
            column.present[row] = column.values.set(row, value);
        }
    }

    /// Drops the rows before `cutoff`; returns how many.
    fn drop_before(&mut self, cutoff: i64) -> usize {
        let rows = self.times.partition_point(|time| *time < cutoff);
        if rows == 0 {
            return 0;
        }
        self.times.drain(..rows);
        for column in self.columns.iter_mut().flatten() {
            column.present.drain(..rows);
            column.values.drain_front(rows);
        }
        rows
    }

    /// The measures of `row` among `slots` (each slot with its name, in name order).
    fn point(
        &self,
        row: usize,
        slots: &[(usize, &AttributeName)],
    ) -> Vec<(AttributeName, MeasureValue)> {
        slots
            .iter()
            .filter_map(|(slot, name)| {
                let value = self.column(*slot)?.value(row)?;
                Some(((*name).clone(), value))
            })
            .collect()
    }

    fn has_any(&self, row: usize, slots: &[(usize, &AttributeName)]) -> bool {
        slots
            .iter()
            .any(|(slot, _)| self.column(*slot).is_some_and(|column| column.present[row]))
    }
}

/// A table: its settings and schema, and its series by dimensions.
#[derive(Debug)]
pub(crate) struct TableData {
    pub(crate) meta: TableMeta,
    /// Each measure's slot in every series' columns; slots are never reused.
    slots: Vec<(AttributeName, MeasureType)>,
    slot_of: HashMap<AttributeName, usize>,
    pub(crate) series: BTreeMap<Dimensions, Series>,
}

impl TableData {
    pub(crate) fn new(meta: TableMeta) -> Self {
        let mut table = Self {
            meta,
            slots: Vec::new(),
            slot_of: HashMap::new(),
            series: BTreeMap::new(),
        };
        let measures: Vec<_> = table
            .meta
            .schema
            .measures
            .iter()
            .map(|(name, kind)| (name.clone(), *kind))
            .collect();
        for (name, kind) in measures {
            table.slot(&name, kind);
        }
        table
    }

    fn slot(&mut self, name: &AttributeName, kind: MeasureType) -> usize {
        if let Some(slot) = self.slot_of.get(name) {
            return *slot;
        }
        let slot = self.slots.len();
        self.slots.push((name.clone(), kind));
        self.slot_of.insert(name.clone(), slot);
        self.meta
            .schema
            .measures
            .entry(name.clone())
            .or_insert(kind);
        slot
    }

    /// `Some(true)` when the record's series already has a record at its time with exactly its
    /// measures, `Some(false)` when it has a different one there, `None` when the time is free.
    pub(crate) fn stored(&self, record: &Record) -> Option<bool> {
        let series = self.series.get(&record.dimensions)?;
        let row = series.row_of(record.time.as_micros()).ok()?;
        let stored_count = series
            .columns
            .iter()
            .flatten()
            .filter(|column| column.present[row])
            .count();
        let same = stored_count == record.measures.len()
            && record.measures.iter().all(|(name, value)| {
                self.slot_of
                    .get(name)
                    .and_then(|slot| series.column(*slot))
                    .is_some_and(|column| column.present[row] && column.values.equals(row, value))
            });
        Some(same)
    }

    /// Adds admitted records, extending the schema; a record whose series and time are taken is
    /// skipped (replay of an entry a checkpoint already holds).
    pub(crate) fn apply(&mut self, records: Vec<Record>) {
        for record in records {
            for (name, _) in record.dimensions.iter() {
                if !self.meta.schema.dimensions.contains(name) {
                    self.meta.schema.dimensions.insert(name.clone());
                }
            }
            let measures: Vec<(usize, MeasureValue)> = record
                .measures
                .into_iter()
                .map(|(name, value)| (self.slot(&name, value.kind()), value))
                .collect();
            let time = record.time.as_micros();
            let series = match self.series.get_mut(&record.dimensions) {
                Some(series) => series,
                None => self.series.entry(record.dimensions).or_default(),
            };
            if let Err(row) = series.row_of(time) {
                series.insert(row, time, measures);
            }
        }
    }

    /// Drops records older than `cutoff`, and series left empty; returns how many records.
    pub(crate) fn drop_before(&mut self, cutoff: Timestamp) -> u64 {
        let mut dropped = 0u64;
        for series in self.series.values_mut() {
            dropped += series.drop_before(cutoff.as_micros()) as u64;
        }
        self.series.retain(|_, series| series.len() > 0);
        dropped
    }

    /// Records held, expired ones included until a checkpoint drops them (what the quota counts).
    pub(crate) fn rows(&self) -> u64 {
        self.series.values().map(|series| series.len() as u64).sum()
    }

    /// The oldest time reads may return at `now`.
    pub(crate) fn oldest(&self, now: Timestamp) -> i64 {
        self.meta.retention_start(now).as_micros()
    }

    pub(crate) fn describe(&self, now: Timestamp) -> TableDescription {
        let oldest = self.oldest(now);
        let (mut series_count, mut row_count) = (0, 0);
        let mut span: Option<(i64, i64)> = None;
        for series in self.series.values() {
            let rows = series.rows(oldest, i64::MAX);
            if rows.is_empty() {
                continue;
            }
            series_count += 1;
            row_count += rows.len() as u64;
            let (first, last) = (series.times[rows.start], series.times[rows.end - 1]);
            span = Some(span.map_or((first, last), |(a, b)| (a.min(first), b.max(last))));
        }
        TableDescription::new(
            &self.meta.table,
            self.meta.retention,
            self.meta.created_at,
            &self.meta.schema,
            series_count,
            row_count,
            span.map(|(a, b)| (Timestamp::from_micros(a), Timestamp::from_micros(b))),
        )
    }

    /// The slots of the named measures (in the order given), skipping names the table lacks.
    pub(crate) fn slots_of<'a>(
        &self,
        names: impl IntoIterator<Item = &'a AttributeName>,
    ) -> Vec<(usize, &'a AttributeName)> {
        names
            .into_iter()
            .filter_map(|name| Some((*self.slot_of.get(name)?, name)))
            .collect()
    }

    /// The latest record (in retention) of a series that has any of `slots`. A rare measure may
    /// send this far back, so it counts its rows against the deadline.
    pub(crate) fn latest(
        &self,
        series: &Series,
        oldest: i64,
        slots: &[(usize, &AttributeName)],
        ticker: &mut DeadlineTicker,
    ) -> Result<Option<Point>, TsError> {
        for row in series.rows(oldest, i64::MAX).rev() {
            ticker.tick()?;
            if series.has_any(row, slots) {
                return Ok(Some(Point {
                    time: Timestamp::from_micros(series.times[row]),
                    measures: series.point(row, slots),
                }));
            }
        }
        Ok(None)
    }

    /// At most `limit` of a series' records in `[start, end)`, reduced to `slots`, dropping
    /// records with none of them unless `keep_empty`.
    pub(crate) fn records(
        series: &Series,
        rows: Range<usize>,
        slots: &[(usize, &AttributeName)],
        keep_empty: bool,
        limit: usize,
        ticker: &mut DeadlineTicker,
    ) -> Result<Vec<Point>, TsError> {
        let mut points = Vec::with_capacity(rows.len().min(limit).min(4_096));
        for row in rows {
            if points.len() >= limit {
                break;
            }
            ticker.tick()?;
            if keep_empty || series.has_any(row, slots) {
                points.push(Point {
                    time: Timestamp::from_micros(series.times[row]),
                    measures: series.point(row, slots),
                });
            }
        }
        Ok(points)
    }

    /// A series folded by `plan` (which has folding) over `rows`: one point per non-empty
    /// bucket, as `fold_range` makes them, at most `limit`; rows are in time order, so buckets
    /// are contiguous.
    pub(crate) fn fold(
        plan: &RangePlan,
        series: &Series,
        rows: Range<usize>,
        slots: &[(usize, &AttributeName)],
        limit: usize,
        ticker: &mut DeadlineTicker,
    ) -> Result<Vec<Point>, TsError> {
        let Some((_, aggregate)) = plan.folding else {
            return Self::records(series, rows, slots, false, limit, ticker);
        };
        let columns: Vec<Option<&Column>> =
            slots.iter().map(|(slot, _)| series.column(*slot)).collect();
        let mut points = Vec::new();
        let mut current: Option<(Timestamp, Vec<Accumulator>)> = None;
        let finish = |(time, accumulators): (Timestamp, Vec<Accumulator>),
                      points: &mut Vec<Point>| {
            let measures: Vec<(AttributeName, MeasureValue)> = slots
                .iter()
                .zip(&accumulators)
                .filter_map(|((_, name), accumulator)| {
                    accumulator.finish().map(|value| ((*name).clone(), value))
                })
                .collect();
            if !measures.is_empty() {
                points.push(Point { time, measures });
            }
        };
        for row in rows {
            ticker.tick()?;
            let time = Timestamp::from_micros(series.times[row]);
            let bucket = plan.bucket_of(time);
            if current.as_ref().is_none_or(|(start, _)| *start != bucket) {
                if let Some(done) = current.take() {
                    finish(done, &mut points);
                }
                if points.len() >= limit {
                    return Ok(points);
                }
                current = Some((bucket, vec![Accumulator::new(aggregate); slots.len()]));
            }
            if let Some((_, accumulators)) = current.as_mut() {
                for (accumulator, column) in accumulators.iter_mut().zip(&columns) {
                    if let Some(column) = column
                        && column.present[row]
                    {
                        accumulator.push(time, &column.values.get(row));
                    }
                }
            }
        }
        if let Some(done) = current {
            finish(done, &mut points);
        }
        points.truncate(limit);
        Ok(points)
    }

    /// Records of every series, for checkpoints: schema, slots, then each series' columns.
    pub(crate) fn encode(&self, out: &mut Encoder) {
        out.table(&self.meta.table);
        out.i64(self.meta.retention.as_micros());
        out.i64(self.meta.created_at.as_micros());
        out.len(self.meta.schema.dimensions.len());
        for name in &self.meta.schema.dimensions {
            out.str(name.as_str());
        }
        out.len(self.slots.len());
        for (name, kind) in &self.slots {
            out.str(name.as_str());
            out.kind(*kind);
        }
        out.len(self.series.len());
        for (dimensions, series) in &self.series {
            out.dimensions(dimensions);
            out.len(series.times.len());
            series.times.iter().for_each(|time| out.i64(*time));
            for slot in 0..self.slots.len() {
                match series.column(slot) {
                    None => out.u8(0),
                    Some(column) => {
                        out.u8(1);
                        column
                            .present
                            .iter()
                            .for_each(|flag| out.u8(u8::from(*flag)));
                        column.values.encode(out);
                    }
                }
            }
        }
    }

    pub(crate) fn decode(input: &mut Decoder<'_>) -> Result<Self, membrain_timeseries::TsError> {
        let table = input.table()?;
        let retention = input.span()?;
        let created_at = Timestamp::from_micros(input.i64()?);
        let mut table = Self::new(TableMeta::new(table, retention, created_at));
        for _ in 0..input.len()? {
            let name = input.name()?;
            table.meta.schema.dimensions.insert(name);
        }
        for _ in 0..input.len()? {
            let name = input.name()?;
            let kind = input.kind()?;
            table.slot(&name, kind);
        }
        for _ in 0..input.len()? {
            let dimensions = input.dimensions()?;
            let rows = input.len()?;
            let times: Vec<i64> = input
                .take(rows * 8)?
                .chunks_exact(8)
                .map(|chunk| i64::from_le_bytes(chunk.try_into().unwrap_or_default()))
                .collect();
            if times.windows(2).any(|pair| pair[0] >= pair[1]) {
                return Err(input.corrupt("a series' times are out of order"));
            }
            let mut columns = Vec::with_capacity(table.slots.len());
            for (_, kind) in &table.slots {
                if input.u8()? == 0 {
                    columns.push(None);
                    continue;
                }
                let present = input.take(rows)?.iter().map(|byte| *byte != 0).collect();
                let values = Values::decode(input, rows)?;
                if values.kind() != *kind {
                    return Err(input.corrupt("a column's type differs from its measure's"));
                }
                columns.push(Some(Column { present, values }));
            }
            table.series.insert(dimensions, Series { times, columns });
        }
        Ok(table)
    }
}
