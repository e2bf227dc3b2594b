//! Records and how a batch of them is admitted into a table: parsing (no table needed), then
//! checking against the table's schema, retention and the clock (under the store's write lock).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::{AttributeName, MeasureType, MeasureValue, Span, TableRef, Timestamp, TsError};

/// A series' dimensions: names to string values, sorted by name. Equal dimension sets name the
/// same series.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dimensions(Vec<(AttributeName, String)>);

/// The longest dimension value (Timestream's limit).
pub const MAX_DIMENSION_VALUE_BYTES: usize = 2048;

impl Dimensions {
    /// From pairs in any order; a repeated name keeps its last value.
    pub fn new(pairs: impl IntoIterator<Item = (AttributeName, String)>) -> Self {
        let map: BTreeMap<AttributeName, String> = pairs.into_iter().collect();
        Self(map.into_iter().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&AttributeName, &str)> {
        self.0.iter().map(|(name, value)| (name, value.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(key, _)| key.as_str().cmp(name))
            .ok()
            .map(|index| self.0[index].1.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An unambiguous text form (a JSON list of pairs), for keys and storage.
    pub fn key(&self) -> String {
        let pairs: Vec<[&str; 2]> = self.iter().map(|(k, v)| [k.as_str(), v]).collect();
        serde_json::to_string(&pairs).unwrap_or_default()
    }

    /// Reads [`key`](Self::key)'s form back.
    pub fn from_key(key: &str) -> Result<Self, TsError> {
        let pairs: Vec<(String, String)> = serde_json::from_str(key).map_err(|error| {
            TsError::Internal(format!("a stored series key is corrupt: {error}"))
        })?;
        let pairs = pairs
            .into_iter()
            .map(|(name, value)| Ok((AttributeName::parse(&name)?, value)))
            .collect::<Result<Vec<_>, TsError>>()?;
        Ok(Self::new(pairs))
    }

    /// Whether every pair of `filter` is one of these dimensions.
    pub fn matches(&self, filter: &DimensionFilter) -> bool {
        filter
            .iter()
            .all(|(name, value)| self.get(name.as_str()) == Some(value))
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(name, value)| (name.to_string(), value.to_owned()))
            .collect()
    }
}

impl Serialize for Dimensions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(serializer)
    }
}

/// Exact-match conditions on dimensions (`{"line_id": "L3"}`): a series matches when it has
/// every named dimension with that value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DimensionFilter(BTreeMap<AttributeName, String>);

impl DimensionFilter {
    pub fn new(pairs: impl IntoIterator<Item = (AttributeName, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// From a JSON object of strings; anything else names the bad entry.
    pub fn from_json(raw: Option<&Json>) -> Result<Self, TsError> {
        let Some(raw) = raw.filter(|raw| !raw.is_null()) else {
            return Ok(Self::default());
        };
        let Json::Object(object) = raw else {
            return Err(TsError::invalid(
                "dimensions",
                "dimensions is an object of dimension names to string values, like {\"line_id\": \"L3\"}",
            ));
        };
        let mut pairs = BTreeMap::new();
        for (name, value) in object {
            let name = AttributeName::parse(name)?;
            let Json::String(value) = value else {
                return Err(TsError::invalid(
                    "dimensions",
                    format!("dimension {name} must be a string value, like \"{value}\""),
                ));
            };
            pairs.insert(name, value.clone());
        }
        Ok(Self(pairs))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&AttributeName, &String)> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One record: a time, the dimensions naming its series, and one or more typed measures (sorted
/// by name).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub time: Timestamp,
    pub dimensions: Dimensions,
    pub measures: Vec<(AttributeName, MeasureValue)>,
}

impl Record {
    pub fn measure(&self, name: &str) -> Option<&MeasureValue> {
        self.measures
            .binary_search_by(|(key, _)| key.as_str().cmp(name))
            .ok()
            .map(|index| &self.measures[index].1)
    }

    /// The JSON form `{time, dimensions, measures}` that [`parse_record`] reads back.
    pub fn to_json(&self) -> Json {
        let measures: serde_json::Map<String, Json> = self
            .measures
            .iter()
            .map(|(name, value)| (name.to_string(), measure_to_input_json(value)))
            .collect();
        serde_json::json!({
            "time": self.time.to_rfc3339(),
            "dimensions": self.dimensions.to_map(),
            "measures": measures,
        })
    }
}

/// A measure as input JSON: timestamps and whole-valued doubles carry their type explicitly so
/// they read back as the same type.
fn measure_to_input_json(value: &MeasureValue) -> Json {
    match value {
        MeasureValue::Timestamp(_) => {
            serde_json::json!({"type": "timestamp", "value": value.to_json()})
        }
        MeasureValue::Double(number) if number.fract() == 0.0 => {
            serde_json::json!({"type": "double", "value": number})
        }
        other => other.to_json(),
    }
}

/// Limits on what one write may carry. Timestream's own limits are smaller (100 records per
/// call); Membrain's are per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteLimits {
    /// Records per write call.
    pub max_records: usize,
    /// How far ahead of the server's clock a record's time may be (Timestream: 15 minutes).
    pub max_future: Span,
    pub max_dimensions_per_record: usize,
    pub max_measures_per_record: usize,
    /// Distinct dimension names per table (Timestream: 128).
    pub max_dimensions_per_table: usize,
    /// Distinct measure names per table (Timestream: 1,024 per multi-measure record).
    pub max_measures_per_table: usize,
    /// Tables one tenant may have (a quota, checked when a write would create a table).
    pub max_tables_per_tenant: u64,
    /// Records one tenant may store over all its tables (a quota; not enforced on Timestream,
    /// which cannot count a tenant's records cheaply).
    pub max_points_per_tenant: u64,
}

/// Tables one tenant may have, by default: far more than an agent's data sets need, few enough
/// that listing them and their schemas stays cheap.
pub const DEFAULT_MAX_TABLES_PER_TENANT: u64 = 100;

/// Records one tenant may store, by default. The embedded store keeps every record in RAM:
/// measured, 2 million records of three `double` measures take 104 MB there (52 bytes each: the
/// time, each measure's value and presence flag, and the spare capacity of growing vectors),
/// and a checkpoint briefly holds its encoded copy on top (35 bytes each). 50 million such
/// records are about 2.6 GB, 4.4 GB while checkpointing: a tenant at its quota leaves most of a
/// 24 GiB machine to the memory store and to other tenants, and no one tenant can exhaust it.
/// Wider records cost more (9 bytes per numeric measure, more for text). The SQL stores keep
/// records on disk and have room for more: raise it there with `--ts-max-points`.
pub const DEFAULT_MAX_POINTS_PER_TENANT: u64 = 50_000_000;

/// What one tenant stores, as a store counts it for the quotas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantUsage {
    pub tables: u64,
    /// Stored records, expired ones included until the store deletes them.
    pub points: u64,
}

impl Default for WriteLimits {
    fn default() -> Self {
        Self {
            max_records: 10_000,
            max_future: Span::from_secs(15 * 60),
            max_dimensions_per_record: 128,
            max_measures_per_record: 256,
            max_dimensions_per_table: 128,
            max_measures_per_table: 1_024,
            max_tables_per_tenant: DEFAULT_MAX_TABLES_PER_TENANT,
            max_points_per_tenant: DEFAULT_MAX_POINTS_PER_TENANT,
        }
    }
}

impl WriteLimits {
    /// The whole batch is refused (nothing written) when it is over the record limit or empty.
    pub fn check_batch_size(&self, records: usize) -> Result<(), TsError> {
        if records == 0 {
            return Err(TsError::invalid(
                "records",
                "records is empty: send at least one {time, dimensions, measures} record",
            ));
        }
        if records > self.max_records {
            return Err(TsError::Limit(format!(
                "a write carries at most {} records; this one has {records}: split it into smaller batches",
                self.max_records
            )));
        }
        Ok(())
    }

    /// Refuses a write that would create `table` when the tenant already has its quota of
    /// tables. Nothing of the write is stored.
    pub fn check_new_table(&self, usage: TenantUsage, table: &TableRef) -> Result<(), TsError> {
        if usage.tables < self.max_tables_per_tenant {
            return Ok(());
        }
        Err(TsError::QuotaExceeded(format!(
            "writing to {table} would create a table, but your tenant already has {} tables and \
             its quota is {} (max_tables): nothing was written. Write to one of your existing \
             tables (ts_list_tables), or drop a table you no longer need (DELETE \
             /api/v1/ts/tables/DATABASE/TABLE) to make room",
            usage.tables, self.max_tables_per_tenant
        )))
    }

    /// Refuses a write that would store `new_points` more records when that takes the tenant
    /// over its points quota. Nothing of the write is stored; the message says how many fit.
    pub fn check_new_points(&self, usage: TenantUsage, new_points: u64) -> Result<(), TsError> {
        if usage.points.saturating_add(new_points) <= self.max_points_per_tenant {
            return Ok(());
        }
        let fit = self.max_points_per_tenant.saturating_sub(usage.points);
        Err(TsError::QuotaExceeded(format!(
            "this write would store {new_points} new records, but your tenant already stores {} \
             of the {} records its quota allows (max_points): {fit} more fit, so nothing was \
             written. Send at most {fit} records, or free space: drop a table you no longer need \
             (DELETE /api/v1/ts/tables/DATABASE/TABLE) or shorten a table's retention (PUT \
             /api/v1/ts/tables/DATABASE/TABLE/retention)",
            usage.points, self.max_points_per_tenant
        )))
    }
}

/// Why one record of a batch was not written, as Timestream's `RejectedRecords` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The record's position in the batch, from 0.
    pub record_index: usize,
    pub reason: String,
}

impl Rejection {
    pub fn new(record_index: usize, reason: impl Into<String>) -> Self {
        Self {
            record_index,
            reason: reason.into(),
        }
    }
}

/// A parsed record and its position in the caller's batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    pub index: usize,
    pub record: Record,
}

/// Parses a batch of JSON records (`{time, dimensions?, measures}`): each either becomes a
/// [`BatchItem`] or a [`Rejection`] naming what is wrong with it. Measures are typed by their
/// JSON shape here; [`TableMeta::admit`] reconciles them with the table.
pub fn parse_records(raw: &[Json], limits: &WriteLimits) -> (Vec<BatchItem>, Vec<Rejection>) {
    let mut items = Vec::with_capacity(raw.len());
    let mut rejected = Vec::new();
    for (index, record) in raw.iter().enumerate() {
        match parse_record(record, limits) {
            Ok(record) => items.push(BatchItem { index, record }),
            Err(reason) => rejected.push(Rejection::new(index, reason)),
        }
    }
    (items, rejected)
}

/// One record from JSON, or the reason it cannot be one.
pub fn parse_record(raw: &Json, limits: &WriteLimits) -> Result<Record, String> {
    let Json::Object(object) = raw else {
        return Err("a record is an object {time, dimensions, measures}".into());
    };
    if let Some(unknown) = object
        .keys()
        .find(|key| !matches!(key.as_str(), "time" | "dimensions" | "measures"))
    {
        return Err(format!(
            "unknown field {unknown:?}: a record has time, dimensions and measures"
        ));
    }
    let time = match object.get("time") {
        Some(Json::String(text)) => Timestamp::parse(text).map_err(|e| e.message().to_owned())?,
        Some(other) => {
            return Err(format!(
                "time must be an RFC 3339 string like 2026-11-26T14:05:00Z, not {other}"
            ));
        }
        None => {
            return Err("time is missing: give an RFC 3339 time like 2026-11-26T14:05:00Z".into());
        }
    };
    let dimensions = match object.get("dimensions") {
        None | Some(Json::Null) => Dimensions::default(),
        Some(Json::Object(map)) => {
            if map.len() > limits.max_dimensions_per_record {
                return Err(format!(
                    "a record has at most {} dimensions; this one has {}",
                    limits.max_dimensions_per_record,
                    map.len()
                ));
            }
            let mut pairs = Vec::with_capacity(map.len());
            for (name, value) in map {
                let name = AttributeName::parse(name).map_err(|e| e.message().to_owned())?;
                let Json::String(value) = value else {
                    return Err(format!(
                        "dimension {name} must be a string (dimensions name a series), not {value}"
                    ));
                };
                if value.is_empty() || value.len() > MAX_DIMENSION_VALUE_BYTES {
                    return Err(format!(
                        "dimension {name} must be 1 to {MAX_DIMENSION_VALUE_BYTES} bytes long"
                    ));
                }
                pairs.push((name, value.clone()));
            }
            Dimensions::new(pairs)
        }
        Some(_) => return Err("dimensions must be an object of names to string values".into()),
    };
    let measures = match object.get("measures") {
        Some(Json::Object(map)) if !map.is_empty() => {
            if map.len() > limits.max_measures_per_record {
                return Err(format!(
                    "a record has at most {} measures; this one has {}",
                    limits.max_measures_per_record,
                    map.len()
                ));
            }
            let mut measures = Vec::with_capacity(map.len());
            for (name, value) in map {
                let name = AttributeName::parse(name).map_err(|e| e.message().to_owned())?;
                if dimensions.get(name.as_str()).is_some() {
                    return Err(format!(
                        "{name} is both a dimension and a measure: rename one"
                    ));
                }
                let value = MeasureValue::from_json(value, None)
                    .map_err(|reason| format!("measure {name}: {reason}"))?;
                measures.push((name, value));
            }
            measures.sort_by(|a, b| a.0.cmp(&b.0));
            measures
        }
        None | Some(Json::Null) => {
            return Err(
                "the record has no measures: give at least one, like {\"speed\": 42.5}".into(),
            );
        }
        Some(Json::Object(_)) => {
            return Err(
                "the record has no measures: give at least one, like {\"speed\": 42.5}".into(),
            );
        }
        Some(_) => return Err("measures must be an object of names to values".into()),
    };
    Ok(Record {
        time,
        dimensions,
        measures,
    })
}

/// What a table knows about its records: every dimension name seen and each measure's type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    pub dimensions: BTreeSet<AttributeName>,
    pub measures: BTreeMap<AttributeName, MeasureType>,
}

impl TableSchema {
    /// Adds a written record's dimension names and measure types. A store calls it for the
    /// records it actually wrote: [`TableMeta::admit`] extends its working schema for every
    /// admitted record, including one the store then finds already stored.
    pub fn learn(&mut self, record: &Record) {
        for (name, _) in record.dimensions.iter() {
            if !self.dimensions.contains(name) {
                self.dimensions.insert(name.clone());
            }
        }
        for (name, value) in &record.measures {
            self.measures
                .entry(name.clone())
                .or_insert_with(|| value.kind());
        }
    }
}

/// How long a table keeps records, by default.
pub const DEFAULT_RETENTION: Span = Span::from_secs(365 * 86_400);

/// A table's settings and schema, as a store keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct TableMeta {
    pub table: TableRef,
    /// Records older than this (against the clock) are dropped, and not accepted.
    pub retention: Span,
    pub created_at: Timestamp,
    pub schema: TableSchema,
}

impl TableMeta {
    pub fn new(table: TableRef, retention: Span, created_at: Timestamp) -> Self {
        Self {
            table,
            retention,
            created_at,
            schema: TableSchema::default(),
        }
    }

    /// The oldest time a record may have at `now`.
    pub fn retention_start(&self, now: Timestamp) -> Timestamp {
        now.plus_micros(-self.retention.as_micros())
    }

    /// Checks parsed records against this table at `now`: the time window (retention behind,
    /// `max_future` ahead), each measure's type (converting an integer to a double, or a string
    /// to a timestamp, where the table says so; the first record to use a measure fixes its
    /// type), the table's caps on names, and duplicates within the batch (same series and time).
    /// Admitted records extend the schema; nothing else changes here.
    pub fn admit(
        &mut self,
        items: Vec<BatchItem>,
        now: Timestamp,
        limits: &WriteLimits,
    ) -> (Vec<BatchItem>, Vec<Rejection>) {
        let oldest = self.retention_start(now);
        let newest = now.plus_micros(limits.max_future.as_micros());
        let mut admitted = Vec::with_capacity(items.len());
        let mut rejected = Vec::new();
        let mut seen: HashSet<(Dimensions, Timestamp)> = HashSet::new();
        for mut item in items {
            let verdict = self.admit_one(&mut item.record, oldest, newest, limits);
            let verdict = verdict.and_then(|()| {
                if seen.insert((item.record.dimensions.clone(), item.record.time)) {
                    Ok(())
                } else {
                    Err(format!(
                        "another record of this batch has the same dimensions and time ({}): \
                         send one record per series and time, with all its measures",
                        item.record.time
                    ))
                }
            });
            match verdict {
                Ok(()) => admitted.push(item),
                Err(reason) => rejected.push(Rejection::new(item.index, reason)),
            }
        }
        (admitted, rejected)
    }

    fn admit_one(
        &mut self,
        record: &mut Record,
        oldest: Timestamp,
        newest: Timestamp,
        limits: &WriteLimits,
    ) -> Result<(), String> {
        if record.time < oldest || record.time > newest {
            return Err(format!(
                "the record timestamp {} is outside the time range [{oldest}, {newest}] this table \
                 accepts (retention {} behind the server clock, {} ahead)",
                record.time, self.retention, limits.max_future
            ));
        }
        let new_dimensions = record
            .dimensions
            .iter()
            .filter(|(name, _)| !self.schema.dimensions.contains(*name))
            .count();
        if self.schema.dimensions.len() + new_dimensions > limits.max_dimensions_per_table {
            return Err(format!(
                "table {} would have more than {} dimension names",
                self.table, limits.max_dimensions_per_table
            ));
        }
        for (name, _) in record.dimensions.iter() {
            if self.schema.measures.contains_key(name) {
                return Err(format!(
                    "{name} is a measure of table {}, so it cannot be a dimension",
                    self.table
                ));
            }
        }
        // Type every measure against the table first, so a rejected record changes nothing.
        let mut new_measures = Vec::new();
        for (name, value) in &mut record.measures {
            if self.schema.dimensions.contains(name) {
                return Err(format!(
                    "{name} is a dimension of table {}, so it cannot be a measure",
                    self.table
                ));
            }
            match self.schema.measures.get(name) {
                Some(&expected) => *value = coerce(name, value, expected)?,
                None => new_measures.push((name.clone(), value.kind())),
            }
        }
        if self.schema.measures.len() + new_measures.len() > limits.max_measures_per_table {
            return Err(format!(
                "table {} would have more than {} measure names",
                self.table, limits.max_measures_per_table
            ));
        }
        self.schema
            .dimensions
            .extend(record.dimensions.iter().map(|(name, _)| name.clone()));
        self.schema.measures.extend(new_measures);
        Ok(())
    }
}

fn coerce(
    name: &AttributeName,
    value: &MeasureValue,
    expected: MeasureType,
) -> Result<MeasureValue, String> {
    match (value, expected) {
        (value, expected) if value.kind() == expected => Ok(value.clone()),
        (MeasureValue::Bigint(integer), MeasureType::Double) => {
            Ok(MeasureValue::Double(*integer as f64))
        }
        (MeasureValue::Varchar(text), MeasureType::Timestamp) => Timestamp::parse(text)
            .map(MeasureValue::Timestamp)
            .map_err(|error| format!("measure {name}: {}", error.message())),
        (value, expected) => Err(format!(
            "measure {name} is {} here but table stores it as {expected}: send a {expected} value \
             (or write to a new measure name)",
            value.kind()
        )),
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}
