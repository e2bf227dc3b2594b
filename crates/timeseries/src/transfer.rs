//! Records in and out of files: JSON lines and CSV, over any `std::io::Read` / `Write`.
//!
//! **JSON lines**: one record per line, exactly the write API's shape
//! `{"time": "2026-11-26T14:05:00Z", "dimensions": {…}, "measures": {…}}` ([`Record::to_json`]
//! writes it, [`parse_record`] reads it), so an export reads back to the same records: times to
//! the microsecond, whole-number doubles as doubles (`{"type": "double", "value": 12.0}`),
//! timestamp measures as timestamps. Blank lines are skipped.
//!
//! **CSV**: a header row, then one record per row. The `time` column holds an RFC 3339 time. Every
//! other column is a dimension when the caller names it in [`CsvOptions::dimensions`] or the
//! header writes it `name:dimension`; otherwise it is a measure, typed in the header
//! (`speed:double`; `double`, `bigint`, `boolean`, `varchar` or `timestamp`) or, when untyped, by
//! its text: an integer is a `bigint`, another number a `double`, `true`/`false` a `boolean`,
//! anything else a `varchar`. An empty cell means the dimension or measure is absent from that
//! record (so an empty `varchar` cannot be told from an absent one). [`CsvWriter`] writes typed
//! headers, so an export imports back unchanged:
//!
//! ```csv
//! time,bus_id:dimension,line_id:dimension,next_stop_id:varchar,passenger_count:bigint,speed:double
//! 2026-11-26T14:05:00Z,B301,L3,S019,42,27.5
//! 2026-11-26T14:05:10Z,B301,L3,S019,42,0
//! ```
//!
//! Readers yield one `Result<Record, LineError>` per line, so a bad line is reported with its
//! line number and the rest still import. A header that cannot be used (no `time` column, an
//! unknown type, a repeated name) is one error on line 1, and nothing more is read.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, BufRead, Write};

use crate::{
    AttributeName, Dimensions, MAX_DIMENSION_VALUE_BYTES, MAX_VARCHAR_BYTES, MeasureType,
    MeasureValue, Record, TableSchema, Timestamp, WriteLimits, parse_record,
};

/// Why one line of an import could not become a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The line of the input, from 1 (for CSV, the line where the row starts).
    pub line: u64,
    pub reason: String,
}

impl LineError {
    fn new(line: u64, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for LineError {}

/// Reads JSON lines: one record per line, as the write API takes it.
pub struct JsonLinesReader<R> {
    lines: io::Lines<R>,
    line: u64,
    limits: WriteLimits,
    failed: bool,
}

impl<R: BufRead> JsonLinesReader<R> {
    pub fn new(reader: R, limits: WriteLimits) -> Self {
        Self {
            lines: reader.lines(),
            line: 0,
            limits,
            failed: false,
        }
    }
}

impl<R: BufRead> Iterator for JsonLinesReader<R> {
    type Item = Result<Record, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let text = self.lines.next()?;
            self.line += 1;
            let text = match text {
                Ok(text) => text,
                // A line that is not UTF-8 was still consumed: report it and read on.
                Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                    return Some(Err(LineError::new(
                        self.line,
                        "the line is not UTF-8 text: save the file as UTF-8",
                    )));
                }
                Err(error) => {
                    self.failed = true;
                    return Some(Err(LineError::new(
                        self.line,
                        format!("cannot read the input: {error}"),
                    )));
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            let parsed = serde_json::from_str(&text)
                .map_err(|error| {
                    format!(
                        "not JSON ({error}): write one {{\"time\", \"dimensions\", \"measures\"}} \
                         object per line"
                    )
                })
                .and_then(|json| parse_record(&json, &self.limits));
            return Some(parsed.map_err(|reason| LineError::new(self.line, reason)));
        }
    }
}

/// Writes records as JSON lines that [`JsonLinesReader`] reads back unchanged.
pub struct JsonLinesWriter<W: Write> {
    writer: W,
}

impl<W: Write> JsonLinesWriter<W> {
    pub fn new(writer: W) -> Self {
        Self { writer }
    }

    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        serde_json::to_writer(&mut self.writer, &record.to_json())?;
        self.writer.write_all(b"\n")
    }

    /// Flushes and hands the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

/// How to read a CSV file.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// Columns that are dimensions although their header does not say `:dimension`.
    pub dimensions: BTreeSet<AttributeName>,
    pub limits: WriteLimits,
}

/// What one CSV column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Time,
    Dimension,
    /// A measure; `None` types each cell by its text.
    Measure(Option<MeasureType>),
}

#[derive(Debug, Clone)]
struct Column {
    name: Option<AttributeName>,
    kind: ColumnKind,
}

/// Reads CSV with a header row into records (see the module documentation for the format).
pub struct CsvReader<R> {
    records: csv::StringRecordsIntoIter<R>,
    columns: Result<Vec<Column>, Option<LineError>>,
    limits: WriteLimits,
}

impl<R: io::Read> CsvReader<R> {
    pub fn new(reader: R, options: CsvOptions) -> Self {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            // Rows of the wrong length are reported by this reader, with its own message.
            .flexible(true)
            .from_reader(reader);
        let columns = match csv.headers() {
            Ok(header) => parse_header(header, &options).map_err(Some),
            Err(error) => Err(Some(csv_error(1, &error))),
        };
        Self {
            records: csv.into_records(),
            columns,
            limits: options.limits,
        }
    }
}

fn parse_header(
    header: &csv::StringRecord,
    options: &CsvOptions,
) -> Result<Vec<Column>, LineError> {
    let header_error = |reason: String| LineError::new(1, reason);
    let mut columns = Vec::with_capacity(header.len());
    let mut seen = BTreeSet::new();
    for raw in header {
        let (name, annotation) = match raw.split_once(':') {
            Some((name, annotation)) => (name.trim(), Some(annotation.trim())),
            None => (raw.trim(), None),
        };
        if !seen.insert(name.to_owned()) {
            return Err(header_error(format!(
                "the header names column {name:?} twice: give each column once"
            )));
        }
        if name == "time" {
            if annotation.is_some_and(|kind| kind != "timestamp") {
                return Err(header_error(
                    "the time column holds RFC 3339 times: write its header as plain `time`".into(),
                ));
            }
            columns.push(Column {
                name: None,
                kind: ColumnKind::Time,
            });
            continue;
        }
        let name = AttributeName::parse(name)
            .map_err(|error| header_error(format!("header: {}", error.message())))?;
        let listed = options.dimensions.contains(&name);
        let kind = match annotation {
            Some("dimension") => ColumnKind::Dimension,
            Some(kind) => {
                let Some(kind) = MeasureType::parse(kind) else {
                    return Err(header_error(format!(
                        "column {raw:?}: unknown type {kind:?}; write name:dimension or name:TYPE \
                         with TYPE one of double, bigint, boolean, varchar, timestamp"
                    )));
                };
                if listed {
                    return Err(header_error(format!(
                        "column {name} is listed as a dimension but its header types it as a \
                         {kind} measure: drop one of the two"
                    )));
                }
                ColumnKind::Measure(Some(kind))
            }
            None if listed => ColumnKind::Dimension,
            None => ColumnKind::Measure(None),
        };
        columns.push(Column {
            name: Some(name),
            kind,
        });
    }
    if !columns.iter().any(|column| column.kind == ColumnKind::Time) {
        return Err(header_error(
            "the header has no time column: add a `time` column of RFC 3339 times".into(),
        ));
    }
    if !columns
        .iter()
        .any(|column| matches!(column.kind, ColumnKind::Measure(_)))
    {
        return Err(header_error(
            "every column is time or a dimension: a record needs at least one measure column"
                .into(),
        ));
    }
    Ok(columns)
}

fn csv_error(line: u64, error: &csv::Error) -> LineError {
    let line = error
        .position()
        .map_or(line, |position| position.line().max(1));
    LineError::new(line, format!("cannot read the CSV: {error}"))
}

impl<R: io::Read> Iterator for CsvReader<R> {
    type Item = Result<Record, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        let columns = match &mut self.columns {
            Ok(columns) => columns,
            // The header error is reported once; without a header no row can be read.
            Err(error) => return error.take().map(Err),
        };
        let row = match self.records.next()? {
            Ok(row) => row,
            Err(error) => {
                let fatal = !matches!(error.kind(), csv::ErrorKind::Utf8 { .. });
                let reported = csv_error(0, &error);
                if fatal {
                    self.columns = Err(None);
                }
                return Some(Err(reported));
            }
        };
        let line = row.position().map_or(0, |position| position.line());
        Some(
            record_from_row(columns, &row, &self.limits)
                .map_err(|reason| LineError::new(line, reason)),
        )
    }
}

fn record_from_row(
    columns: &[Column],
    row: &csv::StringRecord,
    limits: &WriteLimits,
) -> Result<Record, String> {
    if row.len() != columns.len() {
        return Err(format!(
            "the row has {} cells but the header has {} columns: quote cells that contain commas",
            row.len(),
            columns.len()
        ));
    }
    let mut time = None;
    let mut dimensions = Vec::new();
    let mut measures = Vec::new();
    for (column, cell) in columns.iter().zip(row) {
        match (column.kind, &column.name) {
            (ColumnKind::Time, _) => {
                time = Some(Timestamp::parse(cell).map_err(|error| error.message().to_owned())?);
            }
            _ if cell.is_empty() => {}
            (ColumnKind::Dimension, Some(name)) => {
                if cell.len() > MAX_DIMENSION_VALUE_BYTES {
                    return Err(format!(
                        "dimension {name} must be 1 to {MAX_DIMENSION_VALUE_BYTES} bytes long"
                    ));
                }
                dimensions.push((name.clone(), cell.to_owned()));
            }
            (ColumnKind::Measure(kind), Some(name)) => {
                let value = measure_from_cell(cell, kind)
                    .map_err(|reason| format!("measure {name}: {reason}"))?;
                measures.push((name.clone(), value));
            }
            (_, None) => return Err("internal: a named column has no name".into()),
        }
    }
    let Some(time) = time else {
        return Err("the row has no time".into());
    };
    if measures.is_empty() {
        return Err("every measure cell of the row is empty: give at least one measure".into());
    }
    if dimensions.len() > limits.max_dimensions_per_record {
        return Err(format!(
            "a record has at most {} dimensions; this one has {}",
            limits.max_dimensions_per_record,
            dimensions.len()
        ));
    }
    if measures.len() > limits.max_measures_per_record {
        return Err(format!(
            "a record has at most {} measures; this one has {}",
            limits.max_measures_per_record,
            measures.len()
        ));
    }
    measures.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Record {
        time,
        dimensions: Dimensions::new(dimensions),
        measures,
    })
}

fn measure_from_cell(cell: &str, kind: Option<MeasureType>) -> Result<MeasureValue, String> {
    let trimmed = cell.trim();
    let value = match kind {
        None => infer_measure(cell),
        Some(MeasureType::Double) => trimmed
            .parse::<f64>()
            .ok()
            .filter(|number| number.is_finite())
            .map(MeasureValue::Double)
            .ok_or_else(|| format!("{cell:?} is not a double (write a number like 27.5)"))?,
        Some(MeasureType::Bigint) => trimmed
            .parse::<i64>()
            .map(MeasureValue::Bigint)
            .map_err(|_| format!("{cell:?} is not a bigint (write a whole number like 42)"))?,
        Some(MeasureType::Boolean) => parse_boolean(trimmed)
            .map(MeasureValue::Boolean)
            .ok_or_else(|| format!("{cell:?} is not a boolean (write true or false)"))?,
        Some(MeasureType::Timestamp) => Timestamp::parse(trimmed)
            .map(MeasureValue::Timestamp)
            .map_err(|error| error.message().to_owned())?,
        Some(MeasureType::Varchar) => MeasureValue::Varchar(cell.to_owned()),
    };
    if let MeasureValue::Varchar(text) = &value
        && text.len() > MAX_VARCHAR_BYTES
    {
        return Err(format!(
            "a varchar measure holds at most {MAX_VARCHAR_BYTES} bytes; this one has {}",
            text.len()
        ));
    }
    Ok(value)
}

fn parse_boolean(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Types an untyped cell by its text, as JSON types a plain value by its shape.
fn infer_measure(cell: &str) -> MeasureValue {
    let trimmed = cell.trim();
    if let Ok(integer) = trimmed.parse::<i64>() {
        return MeasureValue::Bigint(integer);
    }
    if let Ok(number) = trimmed.parse::<f64>()
        && number.is_finite()
        && trimmed.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'))
    {
        return MeasureValue::Double(number);
    }
    match parse_boolean(trimmed) {
        Some(value) => MeasureValue::Boolean(value),
        None => MeasureValue::Varchar(cell.to_owned()),
    }
}

/// Writes records as CSV with a typed header (`time`, then `name:dimension` columns, then
/// `name:TYPE` measure columns, each group sorted by name), which [`CsvReader`] reads back.
pub struct CsvWriter<W: Write> {
    csv: csv::Writer<W>,
    dimensions: Vec<AttributeName>,
    measures: Vec<(AttributeName, MeasureType)>,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the header for a table of this schema (a store's description, or
    /// [`schema_of`] over the records to export).
    pub fn new(writer: W, schema: &TableSchema) -> io::Result<Self> {
        let mut csv = csv::Writer::from_writer(writer);
        let dimensions: Vec<AttributeName> = schema.dimensions.iter().cloned().collect();
        let measures: Vec<(AttributeName, MeasureType)> = schema
            .measures
            .iter()
            .map(|(name, kind)| (name.clone(), *kind))
            .collect();
        let header = std::iter::once("time".to_owned())
            .chain(dimensions.iter().map(|name| format!("{name}:dimension")))
            .chain(measures.iter().map(|(name, kind)| format!("{name}:{kind}")));
        csv.write_record(header)?;
        Ok(Self {
            csv,
            dimensions,
            measures,
        })
    }

    /// Writes one row. A record with a dimension or measure the header lacks, or a measure of
    /// another type, is refused (`InvalidInput`), since the row could not carry it.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let refuse = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        if let Some((name, _)) = record
            .dimensions
            .iter()
            .find(|(name, _)| self.dimensions.binary_search(name).is_err())
        {
            return Err(refuse(format!(
                "dimension {name} is not a column of this CSV: build the header from every record"
            )));
        }
        let mut row = Vec::with_capacity(1 + self.dimensions.len() + self.measures.len());
        row.push(record.time.to_rfc3339());
        for name in &self.dimensions {
            row.push(
                record
                    .dimensions
                    .get(name.as_str())
                    .unwrap_or("")
                    .to_owned(),
            );
        }
        let mut written = 0;
        for (name, kind) in &self.measures {
            let cell = match record.measure(name.as_str()) {
                None => String::new(),
                Some(value) if value.kind() == *kind => {
                    written += 1;
                    measure_to_cell(value)
                }
                Some(value) => {
                    return Err(refuse(format!(
                        "measure {name} is {} in this record but its column is {kind}",
                        value.kind()
                    )));
                }
            };
            row.push(cell);
        }
        if written != record.measures.len() {
            return Err(refuse(
                "the record has a measure that is not a column of this CSV: build the header from \
                 every record"
                    .into(),
            ));
        }
        self.csv.write_record(&row)?;
        Ok(())
    }

    /// Flushes and hands the writer back.
    pub fn finish(self) -> io::Result<W> {
        self.csv
            .into_inner()
            .map_err(|error| io::Error::other(error.to_string()))
    }
}

fn measure_to_cell(value: &MeasureValue) -> String {
    match value {
        // `Display` of an f64 is the shortest text that parses back to the same number.
        MeasureValue::Double(number) => number.to_string(),
        MeasureValue::Bigint(number) => number.to_string(),
        MeasureValue::Boolean(value) => value.to_string(),
        MeasureValue::Varchar(text) => text.clone(),
        MeasureValue::Timestamp(time) => time.to_rfc3339(),
    }
}

/// The dimensions and typed measures of some records, for a [`CsvWriter`] header. The first
/// record to use a measure fixes its type, as a table does.
pub fn schema_of<'a>(records: impl IntoIterator<Item = &'a Record>) -> TableSchema {
    let mut schema = TableSchema::default();
    for record in records {
        for (name, _) in record.dimensions.iter() {
            schema.dimensions.insert(name.clone());
        }
        for (name, value) in &record.measures {
            schema
                .measures
                .entry(name.clone())
                .or_insert_with(|| value.kind());
        }
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> AttributeName {
        AttributeName::parse(raw).unwrap()
    }

    fn time(raw: &str) -> Timestamp {
        Timestamp::parse(raw).unwrap()
    }

    fn sample_records() -> Vec<Record> {
        vec![
            Record {
                time: Timestamp::from_micros(1_764_165_900_123_456),
                dimensions: Dimensions::new([
                    (name("bus_id"), "B301".to_owned()),
                    (name("line_id"), "L3, \"north\"".to_owned()),
                ]),
                measures: vec![
                    (
                        name("at"),
                        MeasureValue::Timestamp(time("2026-11-26T14:00:00Z")),
                    ),
                    (name("doors_open"), MeasureValue::Boolean(false)),
                    (
                        name("next_stop_id"),
                        MeasureValue::Varchar("S0,19\nx".into()),
                    ),
                    (name("passenger_count"), MeasureValue::Bigint(-42)),
                    (name("speed"), MeasureValue::Double(27.0)),
                    (name("tiny"), MeasureValue::Double(1.0e-7)),
                ],
            },
            Record {
                time: time("2026-11-26T14:05:10Z"),
                dimensions: Dimensions::new([(name("bus_id"), "B302".to_owned())]),
                measures: vec![(name("speed"), MeasureValue::Double(0.1 + 0.2))],
            },
        ]
    }

    fn read_jsonl(text: &str) -> Vec<Result<Record, LineError>> {
        JsonLinesReader::new(text.as_bytes(), WriteLimits::default()).collect()
    }

    fn read_csv(text: &str, dimensions: &[&str]) -> Vec<Result<Record, LineError>> {
        let options = CsvOptions {
            dimensions: dimensions.iter().map(|raw| name(raw)).collect(),
            limits: WriteLimits::default(),
        };
        CsvReader::new(text.as_bytes(), options).collect()
    }

    fn errors(results: &[Result<Record, LineError>]) -> Vec<(u64, String)> {
        results
            .iter()
            .filter_map(|result| result.as_ref().err())
            .map(|error| (error.line, error.reason.clone()))
            .collect()
    }

    #[test]
    fn json_lines_round_trip_exactly() {
        let records = sample_records();
        let mut writer = JsonLinesWriter::new(Vec::new());
        for record in &records {
            writer.write(record).unwrap();
        }
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        assert_eq!(text.lines().count(), records.len());
        let read: Vec<Record> = read_jsonl(&text).into_iter().map(Result::unwrap).collect();
        assert_eq!(read, records);
    }

    #[test]
    fn json_lines_report_bad_lines_and_read_on() {
        let text = "{\"time\": \"2026-11-26T14:00:00Z\", \"measures\": {\"x\": 1}}\n\
                    \n\
                    not json\n\
                    {\"time\": \"yesterday\", \"measures\": {\"x\": 1}}\n\
                    {\"time\": \"2026-11-26T14:00:00Z\", \"measures\": {}}\n\
                    {\"time\": \"2026-11-26T14:01:00Z\", \"measures\": {\"x\": 2}}\n";
        let results = read_jsonl(text);
        assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 2);
        let errors = errors(&results);
        let lines: Vec<u64> = errors.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [3, 4, 5], "{errors:?}");
        assert!(errors[0].1.contains("not JSON"), "{errors:?}");
        assert!(errors[1].1.contains("RFC 3339"), "{errors:?}");
        assert!(errors[2].1.contains("no measures"), "{errors:?}");
    }

    #[test]
    fn csv_round_trips_through_a_typed_header() {
        let records = sample_records();
        let mut writer = CsvWriter::new(Vec::new(), &schema_of(&records)).unwrap();
        for record in &records {
            writer.write(record).unwrap();
        }
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        assert!(
            text.starts_with(
                "time,bus_id:dimension,line_id:dimension,at:timestamp,doors_open:boolean,\
                 next_stop_id:varchar,passenger_count:bigint,speed:double,tiny:double\n"
            ),
            "{text}"
        );
        let read: Vec<Record> = read_csv(&text, &[])
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(read, records);
    }

    #[test]
    fn csv_writer_refuses_what_its_header_cannot_carry() {
        let records = sample_records();
        let schema = schema_of(&records[1..]);
        let mut writer = CsvWriter::new(Vec::new(), &schema).unwrap();
        let error = writer.write(&records[0]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("line_id"), "{error}");
    }

    #[test]
    fn untyped_csv_cells_are_typed_by_their_text() {
        let text = "time,bus_id,a,b,c,d,e,f\n\
                    2026-11-26T14:00:00Z,B1,42,-2.5,TRUE,open,1e3,\n";
        let results = read_csv(text, &["bus_id"]);
        let record = results[0].as_ref().unwrap();
        assert_eq!(record.dimensions.get("bus_id"), Some("B1"));
        assert_eq!(record.measure("a"), Some(&MeasureValue::Bigint(42)));
        assert_eq!(record.measure("b"), Some(&MeasureValue::Double(-2.5)));
        assert_eq!(record.measure("c"), Some(&MeasureValue::Boolean(true)));
        assert_eq!(
            record.measure("d"),
            Some(&MeasureValue::Varchar("open".into()))
        );
        assert_eq!(record.measure("e"), Some(&MeasureValue::Double(1000.0)));
        assert_eq!(
            record.measure("f"),
            None,
            "an empty cell is an absent measure"
        );
    }

    #[test]
    fn dimensions_come_from_the_list_or_the_header() {
        let text = "time,bus_id,line_id:dimension,speed\n2026-11-26T14:00:00Z,B1,L3,12\n";
        let listed = read_csv(text, &["bus_id"]);
        let record = listed[0].as_ref().unwrap();
        assert_eq!(record.dimensions.len(), 2);
        assert_eq!(record.measures.len(), 1);
        let unlisted = read_csv(text, &[]);
        let record = unlisted[0].as_ref().unwrap();
        assert_eq!(record.dimensions.len(), 1, "line_id only");
        assert_eq!(
            record.measure("bus_id"),
            Some(&MeasureValue::Varchar("B1".into()))
        );
        // A column cannot be both a listed dimension and a typed measure.
        let conflict = read_csv("time,bus_id:varchar,x\n", &["bus_id"]);
        let errors = errors(&conflict);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].1.contains("listed as a dimension"), "{errors:?}");
    }

    #[test]
    fn bad_csv_rows_are_reported_with_their_line_and_the_rest_import() {
        let text = "time,bus_id:dimension,speed:double,count\n\
                    2026-11-26T14:00:00Z,B1,1.5,3\n\
                    yesterday,B1,1.5,3\n\
                    2026-11-26T14:00:10Z,B1,1.5\n\
                    2026-11-26T14:00:20Z,B1,fast,3\n\
                    \"2026-11-26T14:00:30Z\",\"B1,\nB2\",2,4\n\
                    2026-11-26T14:00:40Z,B1,,\n\
                    2026-11-26T14:00:50Z,B1,2.5,4\n";
        let results = read_csv(text, &[]);
        assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 3);
        let multi_line = results[4].as_ref().unwrap();
        assert_eq!(multi_line.dimensions.get("bus_id"), Some("B1,\nB2"));
        assert_eq!(
            multi_line.measure("speed"),
            Some(&MeasureValue::Double(2.0))
        );
        let errors = errors(&results);
        let lines: Vec<u64> = errors.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [3, 4, 5, 8], "{errors:?}");
        assert!(errors[0].1.contains("RFC 3339"), "{errors:?}");
        assert!(errors[1].1.contains("3 cells") && errors[1].1.contains("4 columns"));
        assert!(errors[2].1.contains("speed") && errors[2].1.contains("double"));
        assert!(errors[3].1.contains("at least one measure"), "{errors:?}");
    }

    #[test]
    fn unusable_headers_are_one_error_on_line_one() {
        for (header, expected) in [
            ("bus_id,speed\n2026-11-26T14:00:00Z,3\n", "no time column"),
            ("time,speed:float\n", "unknown type"),
            ("time,speed,speed\n", "twice"),
            ("time,bad name\n", "not a valid"),
            ("time,bus_id:dimension\n", "at least one measure"),
            ("time:double,x\n", "time column"),
        ] {
            let results = read_csv(header, &[]);
            let errors = errors(&results);
            assert_eq!(results.len(), 1, "{header}: {errors:?}");
            assert_eq!(errors[0].0, 1, "{header}");
            assert!(errors[0].1.contains(expected), "{header}: {errors:?}");
        }
    }
}
