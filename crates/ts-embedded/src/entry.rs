//! What one log entry says happened: admitted records, a retention change, or a dropped table.
//! Replaying the entries in order onto the last checkpoint rebuilds the store.

use std::collections::HashMap;

use membrain_memory::TenantId;
use membrain_timeseries::{AttributeName, Dimensions, Record, Span, TableRef, Timestamp, TsError};

use crate::codec::{Decoder, Encoder};

const WRITE: u8 = 1;
const SET_RETENTION: u8 = 2;
const DROP_TABLE: u8 = 3;

/// Whether `byte` is the first byte of some entry (its kind).
pub(crate) fn is_kind(byte: u8) -> bool {
    matches!(byte, WRITE | SET_RETENTION | DROP_TABLE)
}

#[derive(Debug, PartialEq)]
pub(crate) enum Entry {
    /// Admitted records; `created` (retention, creation time) when this write made the table.
    Write {
        tenant: TenantId,
        table: TableRef,
        created: Option<(Span, Timestamp)>,
        records: Vec<Record>,
    },
    /// Records older than `now - retention` are gone from here on.
    SetRetention {
        tenant: TenantId,
        table: TableRef,
        retention: Span,
        now: Timestamp,
    },
    DropTable {
        tenant: TenantId,
        table: TableRef,
    },
}

pub(crate) fn encode_write(
    tenant: &TenantId,
    table: &TableRef,
    created: Option<(Span, Timestamp)>,
    records: &[Record],
) -> Vec<u8> {
    let mut out = Encoder::default();
    out.u8(WRITE);
    out.str(tenant.as_str());
    out.table(table);
    match created {
        Some((retention, at)) => {
            out.u8(1);
            out.i64(retention.as_micros());
            out.i64(at.as_micros());
        }
        None => out.u8(0),
    }
    // Series and measure names repeat across a batch: each is written once, then referred to.
    let mut series: HashMap<&Dimensions, u32> = HashMap::new();
    let mut measures: HashMap<&AttributeName, u32> = HashMap::new();
    for record in records {
        let next = series.len() as u32;
        series.entry(&record.dimensions).or_insert(next);
        for (name, _) in &record.measures {
            let next = measures.len() as u32;
            measures.entry(name).or_insert(next);
        }
    }
    let mut series_list: Vec<(&Dimensions, u32)> = series.iter().map(|(k, v)| (*k, *v)).collect();
    series_list.sort_by_key(|(_, index)| *index);
    out.len(series_list.len());
    for (dimensions, _) in &series_list {
        out.dimensions(dimensions);
    }
    let mut measure_list: Vec<(&AttributeName, u32)> =
        measures.iter().map(|(k, v)| (*k, *v)).collect();
    measure_list.sort_by_key(|(_, index)| *index);
    out.len(measure_list.len());
    for (name, _) in &measure_list {
        out.str(name.as_str());
    }
    out.len(records.len());
    for record in records {
        out.u32(series[&record.dimensions]);
        out.i64(record.time.as_micros());
        out.len(record.measures.len());
        for (name, value) in &record.measures {
            out.u32(measures[name]);
            out.value(value);
        }
    }
    out.bytes
}

pub(crate) fn encode_set_retention(
    tenant: &TenantId,
    table: &TableRef,
    retention: Span,
    now: Timestamp,
) -> Vec<u8> {
    let mut out = Encoder::default();
    out.u8(SET_RETENTION);
    out.str(tenant.as_str());
    out.table(table);
    out.i64(retention.as_micros());
    out.i64(now.as_micros());
    out.bytes
}

pub(crate) fn encode_drop(tenant: &TenantId, table: &TableRef) -> Vec<u8> {
    let mut out = Encoder::default();
    out.u8(DROP_TABLE);
    out.str(tenant.as_str());
    out.table(table);
    out.bytes
}

pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<Entry, TsError> {
    let mut input = Decoder::new(bytes, what);
    let tag = input.u8()?;
    let tenant = input.string()?;
    let tenant = TenantId::parse(&tenant).map_err(|error| input.corrupt(error))?;
    let table = input.table()?;
    let entry = match tag {
        WRITE => {
            let created = match input.u8()? {
                0 => None,
                _ => Some((input.span()?, Timestamp::from_micros(input.i64()?))),
            };
            let series = (0..input.len()?)
                .map(|_| input.dimensions())
                .collect::<Result<Vec<_>, _>>()?;
            let names = (0..input.len()?)
                .map(|_| input.name())
                .collect::<Result<Vec<_>, _>>()?;
            let count = input.len()?;
            let mut records = Vec::with_capacity(count.min(100_000));
            for _ in 0..count {
                let dimensions = series
                    .get(input.u32()? as usize)
                    .ok_or_else(|| input.corrupt("a record names an unknown series"))?
                    .clone();
                let time = Timestamp::from_micros(input.i64()?);
                let measure_count = input.len()?;
                let mut measures = Vec::with_capacity(measure_count.min(1024));
                for _ in 0..measure_count {
                    let name = names
                        .get(input.u32()? as usize)
                        .ok_or_else(|| input.corrupt("a record names an unknown measure"))?
                        .clone();
                    measures.push((name, input.value()?));
                }
                records.push(Record {
                    time,
                    dimensions,
                    measures,
                });
            }
            Entry::Write {
                tenant,
                table,
                created,
                records,
            }
        }
        SET_RETENTION => Entry::SetRetention {
            tenant,
            table,
            retention: input.span()?,
            now: Timestamp::from_micros(input.i64()?),
        },
        DROP_TABLE => Entry::DropTable { tenant, table },
        other => return Err(input.corrupt(format!("unknown entry kind {other}"))),
    };
    if !input.is_done() {
        return Err(input.corrupt("an entry has bytes after its end"));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use membrain_timeseries::{MeasureValue, Span};

    use super::*;

    #[test]
    fn entries_round_trip() {
        let tenant = TenantId::parse("acme").expect("tenant");
        let table = TableRef::parse("transit", "bus_position").expect("table");
        let name = |raw: &str| AttributeName::parse(raw).expect("name");
        let bus = Dimensions::new([(name("bus_id"), "B1".to_owned())]);
        let records = vec![
            Record {
                time: Timestamp::from_micros(10),
                dimensions: bus.clone(),
                measures: vec![
                    (name("door"), MeasureValue::Varchar("open".into())),
                    (name("speed"), MeasureValue::Double(1.5)),
                ],
            },
            Record {
                time: Timestamp::from_micros(20),
                dimensions: bus,
                measures: vec![
                    (
                        name("at"),
                        MeasureValue::Timestamp(Timestamp::from_micros(5)),
                    ),
                    (name("full"), MeasureValue::Boolean(true)),
                    (name("riders"), MeasureValue::Bigint(-3)),
                ],
            },
        ];
        let created = Some((Span::from_secs(60), Timestamp::from_micros(7)));
        let bytes = encode_write(&tenant, &table, created, &records);
        assert_eq!(
            decode(&bytes, "test").expect("decodes"),
            Entry::Write {
                tenant: tenant.clone(),
                table: table.clone(),
                created,
                records
            }
        );
        let bytes = encode_set_retention(
            &tenant,
            &table,
            Span::from_secs(5),
            Timestamp::from_micros(9),
        );
        assert!(matches!(
            decode(&bytes, "test"),
            Ok(Entry::SetRetention { .. })
        ));
        let bytes = encode_drop(&tenant, &table);
        assert_eq!(
            decode(&bytes, "test").expect("decodes"),
            Entry::DropTable { tenant, table }
        );
        assert!(decode(&bytes[..bytes.len() - 1], "test").is_err());
    }
}
