//! How a record's measures are stored: one compact JSON object per record, values typed by the
//! table's schema (doubles, integers, booleans, strings; timestamps as Unix microseconds).

use membrain_timeseries::{
    AttributeName, MeasureType, MeasureValue, TableSchema, Timestamp, TsError,
};
use serde_json::{Map, Value as Json};

/// The stored form of a record's measures (names sorted, as [`Record`] keeps them).
///
/// [`Record`]: membrain_timeseries::Record
pub(crate) fn encode(measures: &[(AttributeName, MeasureValue)]) -> String {
    let object: Map<String, Json> = measures
        .iter()
        .map(|(name, value)| (name.to_string(), stored_value(value)))
        .collect();
    Json::Object(object).to_string()
}

fn stored_value(value: &MeasureValue) -> Json {
    match value {
        // Admitted doubles come from JSON numbers, so they are always finite.
        MeasureValue::Double(number) => serde_json::Number::from_f64(*number)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        MeasureValue::Bigint(integer) => Json::from(*integer),
        MeasureValue::Boolean(flag) => Json::Bool(*flag),
        MeasureValue::Varchar(text) => Json::String(text.clone()),
        MeasureValue::Timestamp(time) => Json::from(time.as_micros()),
    }
}

/// Reads stored measures back, keeping those `wanted` accepts, sorted by name.
pub(crate) fn decode(
    stored: &str,
    schema: &TableSchema,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<(AttributeName, MeasureValue)>, TsError> {
    let object: Map<String, Json> = serde_json::from_str(stored)
        .map_err(|error| corrupt(format!("stored measures are not a JSON object: {error}")))?;
    let mut measures = Vec::with_capacity(object.len());
    for (name, value) in object {
        if !wanted(&name) {
            continue;
        }
        let Some((name, kind)) = schema.measures.get_key_value(name.as_str()) else {
            return Err(corrupt(format!(
                "stored measure {name} is not in its table's schema"
            )));
        };
        let value = typed(&value, *kind)
            .ok_or_else(|| corrupt(format!("stored measure {name} is not a {kind}: {value}")))?;
        measures.push((name.clone(), value));
    }
    // serde_json's map is ordered by key, but say so rather than rely on a feature flag.
    measures.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(measures)
}

fn typed(value: &Json, kind: MeasureType) -> Option<MeasureValue> {
    Some(match kind {
        MeasureType::Double => MeasureValue::Double(value.as_f64()?),
        MeasureType::Bigint => MeasureValue::Bigint(value.as_i64()?),
        MeasureType::Boolean => MeasureValue::Boolean(value.as_bool()?),
        MeasureType::Varchar => MeasureValue::Varchar(value.as_str()?.to_owned()),
        MeasureType::Timestamp => MeasureValue::Timestamp(Timestamp::from_micros(value.as_i64()?)),
    })
}

fn corrupt(detail: String) -> TsError {
    TsError::Internal(format!("a stored time-series record is corrupt: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> AttributeName {
        AttributeName::parse(raw).expect("a name")
    }

    #[test]
    fn every_type_round_trips_through_the_stored_form() {
        let measures = vec![
            (
                name("at"),
                MeasureValue::Timestamp(Timestamp::from_micros(1_700_000_000_123_456)),
            ),
            (name("count"), MeasureValue::Bigint(-7)),
            (name("door"), MeasureValue::Varchar("open \"now\"".into())),
            (name("moving"), MeasureValue::Boolean(true)),
            (name("speed"), MeasureValue::Double(20.0)),
        ];
        let mut schema = TableSchema::default();
        for (measure, value) in &measures {
            schema.measures.insert(measure.clone(), value.kind());
        }
        let stored = encode(&measures);
        assert_eq!(
            decode(&stored, &schema, |_| true).expect("decode"),
            measures
        );
        let speed_only = decode(&stored, &schema, |n| n == "speed").expect("decode");
        assert_eq!(
            speed_only,
            vec![(name("speed"), MeasureValue::Double(20.0))]
        );
    }

    #[test]
    fn a_value_that_does_not_fit_its_schema_type_is_reported_as_corrupt() {
        let mut schema = TableSchema::default();
        schema.measures.insert(name("count"), MeasureType::Bigint);
        let error = decode(r#"{"count":"x"}"#, &schema, |_| true).expect_err("corrupt");
        assert!(error.to_string().contains("not a bigint"), "{error}");
        let error = decode(r#"{"other":1}"#, &schema, |_| true).expect_err("corrupt");
        assert!(error.to_string().contains("schema"), "{error}");
    }
}
