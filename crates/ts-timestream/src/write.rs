//! Membrain records as Timestream multi-measure records, and Timestream's rejections back as the
//! caller's record indices.

use aws_sdk_timestreamwrite::types::{
    Dimension, DimensionValueType, MeasureValue as TimestreamMeasure, MeasureValueType,
    Record as TimestreamRecord, RejectedRecord, TimeUnit,
};
use membrain_timeseries::{BatchItem, MeasureValue, Rejection, TsError};

use crate::sql::MEASURE_NAME;

/// Timestream takes at most 100 records per WriteRecords call.
pub const RECORDS_PER_CALL: usize = 100;

/// One record as Timestream stores it: its dimensions, the fixed measure name, every measure as a
/// typed value of one MULTI measure, and the time in microseconds.
pub fn timestream_record(item: &BatchItem) -> Result<TimestreamRecord, TsError> {
    let record = &item.record;
    let dimensions = record
        .dimensions
        .iter()
        .map(|(name, value)| {
            Dimension::builder()
                .name(name.as_str())
                .value(value)
                .dimension_value_type(DimensionValueType::Varchar)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TsError::Internal(format!("building a Timestream dimension: {error}")))?;
    let measures = record
        .measures
        .iter()
        .map(|(name, value)| {
            let (kind, text) = measure_text(value);
            TimestreamMeasure::builder()
                .name(name.as_str())
                .value(text)
                .r#type(kind)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TsError::Internal(format!("building a Timestream measure: {error}")))?;
    Ok(TimestreamRecord::builder()
        .set_dimensions(Some(dimensions))
        .measure_name(MEASURE_NAME)
        .measure_value_type(MeasureValueType::Multi)
        .set_measure_values(Some(measures))
        .time(record.time.as_micros().to_string())
        .time_unit(TimeUnit::Microseconds)
        .build())
}

/// A measure's Timestream type and text. A timestamp measure is written in the record's unit
/// (microseconds since the epoch).
fn measure_text(value: &MeasureValue) -> (MeasureValueType, String) {
    match value {
        MeasureValue::Double(number) => (MeasureValueType::Double, number.to_string()),
        MeasureValue::Bigint(number) => (MeasureValueType::Bigint, number.to_string()),
        MeasureValue::Boolean(flag) => (MeasureValueType::Boolean, flag.to_string()),
        MeasureValue::Varchar(text) => (MeasureValueType::Varchar, text.clone()),
        MeasureValue::Timestamp(time) => {
            (MeasureValueType::Timestamp, time.as_micros().to_string())
        }
    }
}

/// Timestream's rejections of one call (indices into `chunk`) as rejections of the caller's
/// records. An index outside the chunk is a broken answer, reported rather than guessed at.
pub fn map_rejections(
    chunk: &[BatchItem],
    rejected: &[RejectedRecord],
) -> Result<Vec<Rejection>, TsError> {
    rejected
        .iter()
        .map(|rejection| {
            let item = usize::try_from(rejection.record_index())
                .ok()
                .and_then(|index| chunk.get(index))
                .ok_or_else(|| {
                    TsError::Internal(format!(
                        "Timestream rejected record {} of a call with {} records",
                        rejection.record_index(),
                        chunk.len()
                    ))
                })?;
            let reason = rejection
                .reason()
                .unwrap_or("Timestream rejected the record without a reason");
            Ok(Rejection::new(item.index, format!("Timestream: {reason}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use membrain_timeseries::{WriteLimits, parse_record};
    use serde_json::json;

    use super::*;

    fn item(index: usize, raw: serde_json::Value) -> BatchItem {
        BatchItem {
            index,
            record: parse_record(&raw, &WriteLimits::default()).unwrap(),
        }
    }

    #[test]
    fn records_become_multi_measure_records_in_microseconds() {
        let record = timestream_record(&item(
            0,
            json!({"time": "2026-11-26T14:00:00.5Z", "dimensions": {"bus_id": "B'1"},
                   "measures": {"speed": 30.5, "passengers": 12, "open": true, "door": "closed",
                                "seen": {"type": "timestamp", "value": "1970-01-01T00:00:01Z"}}}),
        ))
        .unwrap();
        assert_eq!(record.measure_name(), Some(MEASURE_NAME));
        assert_eq!(record.measure_value_type(), Some(&MeasureValueType::Multi));
        assert_eq!(record.time_unit(), Some(&TimeUnit::Microseconds));
        assert_eq!(record.time(), Some("1795701600500000"));
        assert_eq!(record.dimensions()[0].value(), "B'1");
        let measures: Vec<(&str, &str, &str)> = record
            .measure_values()
            .iter()
            .map(|m| (m.name(), m.value(), m.r#type().as_str()))
            .collect();
        assert_eq!(
            measures,
            [
                ("door", "closed", "VARCHAR"),
                ("open", "true", "BOOLEAN"),
                ("passengers", "12", "BIGINT"),
                ("seen", "1000000", "TIMESTAMP"),
                ("speed", "30.5", "DOUBLE"),
            ]
        );
    }

    #[test]
    fn rejections_map_back_to_the_callers_indices() {
        // The second call of a batch: its chunk holds the caller's records 100, 102 and 107.
        let chunk: Vec<BatchItem> = [100, 102, 107]
            .into_iter()
            .map(|index| {
                item(
                    index,
                    json!({"time": "2026-11-26T14:00:00Z", "measures": {"x": 1}}),
                )
            })
            .collect();
        let exception = aws_sdk_timestreamwrite::types::error::RejectedRecordsException::builder()
            .rejected_records(
                RejectedRecord::builder()
                    .record_index(2)
                    .reason("Measure x has type DOUBLE in the table")
                    .build(),
            )
            .rejected_records(RejectedRecord::builder().record_index(0).build())
            .build();
        let rejections = map_rejections(&chunk, exception.rejected_records()).unwrap();
        assert_eq!(
            rejections,
            [
                Rejection::new(107, "Timestream: Measure x has type DOUBLE in the table"),
                Rejection::new(
                    100,
                    "Timestream: Timestream rejected the record without a reason"
                ),
            ]
        );
        let broken = [RejectedRecord::builder().record_index(3).build()];
        assert!(map_rejections(&chunk, &broken).is_err());
    }
}
