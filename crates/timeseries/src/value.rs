//! Typed measure values, as Timestream types them: `DOUBLE`, `BIGINT`, `BOOLEAN`, `VARCHAR` and
//! `TIMESTAMP`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::Timestamp;

/// The type of a measure. A table fixes each measure's type on the first write that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeasureType {
    Double,
    Bigint,
    Boolean,
    Varchar,
    Timestamp,
}

impl MeasureType {
    pub const ALL: [MeasureType; 5] = [
        Self::Double,
        Self::Bigint,
        Self::Boolean,
        Self::Varchar,
        Self::Timestamp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Double => "double",
            Self::Bigint => "bigint",
            Self::Boolean => "boolean",
            Self::Varchar => "varchar",
            Self::Timestamp => "timestamp",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(raw.trim()))
    }

    /// Whether `avg`, `sum`, `min` and `max` apply.
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Double | Self::Bigint)
    }
}

impl fmt::Display for MeasureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measure's value.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasureValue {
    Double(f64),
    Bigint(i64),
    Boolean(bool),
    Varchar(String),
    Timestamp(Timestamp),
}

/// The longest `varchar` measure Membrain stores (Timestream's limit is 2 KB).
pub const MAX_VARCHAR_BYTES: usize = 2048;

impl MeasureValue {
    pub fn kind(&self) -> MeasureType {
        match self {
            Self::Double(_) => MeasureType::Double,
            Self::Bigint(_) => MeasureType::Bigint,
            Self::Boolean(_) => MeasureType::Boolean,
            Self::Varchar(_) => MeasureType::Varchar,
            Self::Timestamp(_) => MeasureType::Timestamp,
        }
    }

    /// The value as a number, for numeric aggregates.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Double(value) => Some(*value),
            Self::Bigint(value) => Some(*value as f64),
            _ => None,
        }
    }

    /// The JSON form: numbers and booleans as themselves, text as a string, a timestamp as an
    /// RFC 3339 string.
    pub fn to_json(&self) -> Json {
        match self {
            Self::Double(value) => serde_json::Number::from_f64(*value)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Self::Bigint(value) => Json::from(*value),
            Self::Boolean(value) => Json::Bool(*value),
            Self::Varchar(value) => Json::String(value.clone()),
            Self::Timestamp(value) => Json::String(value.to_rfc3339()),
        }
    }

    /// Reads a measure from JSON. Plain values are typed by their shape (an integer literal is a
    /// `bigint`, a number with a fraction or exponent a `double`, `true`/`false` a `boolean`, a
    /// string a `varchar`); `{"type": "timestamp", "value": "2026-…"}` names the type
    /// explicitly. `expected` (the table's type for this measure, when it has one) converts an
    /// integer literal to `double` and an RFC 3339 string to `timestamp`; any other difference is
    /// an error that names both types.
    pub fn from_json(raw: &Json, expected: Option<MeasureType>) -> Result<Self, String> {
        let (value, named) = match raw {
            Json::Object(object) => {
                let Some(kind) = object.get("type").and_then(Json::as_str) else {
                    return Err(
                        "an object measure needs \"type\" (double, bigint, boolean, varchar or \
                         timestamp) and \"value\""
                            .into(),
                    );
                };
                let Some(kind) = MeasureType::parse(kind) else {
                    return Err(format!(
                        "unknown measure type {kind:?}: use double, bigint, boolean, varchar or timestamp"
                    ));
                };
                let Some(value) = object.get("value") else {
                    return Err("an object measure needs \"value\" beside \"type\"".into());
                };
                (value, Some(kind))
            }
            other => (other, None),
        };
        let wanted = named.or(expected);
        let parsed = match (value, wanted) {
            (Json::Null, _) => return Err("a measure value may not be null: leave it out".into()),
            (Json::Number(number), Some(MeasureType::Double)) => number
                .as_f64()
                .map(Self::Double)
                .ok_or_else(|| format!("{number} is not a double"))?,
            (Json::Number(number), Some(MeasureType::Bigint)) => number
                .as_i64()
                .map(Self::Bigint)
                .ok_or_else(|| format!("{number} is not a whole number that fits a bigint"))?,
            (Json::Number(number), Some(MeasureType::Timestamp)) => {
                return Err(format!(
                    "{number} is a number; a timestamp measure is an RFC 3339 string"
                ));
            }
            (Json::Number(number), _) => match number.as_i64() {
                Some(integer) if !number.to_string().contains(['.', 'e', 'E']) => {
                    Self::Bigint(integer)
                }
                _ => number
                    .as_f64()
                    .map(Self::Double)
                    .ok_or_else(|| format!("{number} is not a number Membrain can store"))?,
            },
            (Json::Bool(value), _) => Self::Boolean(*value),
            (Json::String(text), Some(MeasureType::Timestamp)) => {
                Self::Timestamp(Timestamp::parse(text).map_err(|error| error.message().to_owned())?)
            }
            (Json::String(text), _) => {
                if text.len() > MAX_VARCHAR_BYTES {
                    return Err(format!(
                        "a varchar measure holds at most {MAX_VARCHAR_BYTES} bytes; this one has {}",
                        text.len()
                    ));
                }
                Self::Varchar(text.clone())
            }
            (Json::Array(_) | Json::Object(_), _) => {
                return Err(
                    "a measure value is a number, a boolean or a string (lists and objects are not \
                     stored)"
                        .into(),
                );
            }
        };
        if let Some(wanted) = wanted
            && parsed.kind() != wanted
        {
            return Err(format!(
                "is {} here but the table stores it as {wanted}",
                parsed.kind()
            ));
        }
        Ok(parsed)
    }
}

impl Serialize for MeasureValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn plain_json_values_are_typed_by_shape() {
        let cases = [
            (json!(12), MeasureValue::Bigint(12)),
            (json!(12.5), MeasureValue::Double(12.5)),
            (json!(1e3), MeasureValue::Double(1000.0)),
            (json!(true), MeasureValue::Boolean(true)),
            (json!("open"), MeasureValue::Varchar("open".into())),
        ];
        for (raw, expected) in cases {
            assert_eq!(MeasureValue::from_json(&raw, None).unwrap(), expected);
        }
    }

    #[test]
    fn the_table_type_converts_what_it_safely_can() {
        assert_eq!(
            MeasureValue::from_json(&json!(12), Some(MeasureType::Double)).unwrap(),
            MeasureValue::Double(12.0)
        );
        assert_eq!(
            MeasureValue::from_json(&json!("2026-11-26T14:00:00Z"), Some(MeasureType::Timestamp))
                .unwrap()
                .to_json(),
            json!("2026-11-26T14:00:00Z")
        );
        let error = MeasureValue::from_json(&json!(12.5), Some(MeasureType::Bigint)).unwrap_err();
        assert!(error.contains("bigint"), "{error}");
        let error = MeasureValue::from_json(&json!("x"), Some(MeasureType::Double)).unwrap_err();
        assert!(
            error.contains("varchar") && error.contains("double"),
            "{error}"
        );
    }

    #[test]
    fn explicit_types_and_bad_values() {
        let stamp = json!({"type": "timestamp", "value": "2026-11-26T14:00:00Z"});
        assert_eq!(
            MeasureValue::from_json(&stamp, None).unwrap().kind(),
            MeasureType::Timestamp
        );
        for bad in [
            json!(null),
            json!([1]),
            json!({"value": 1}),
            json!({"type": "float", "value": 1}),
            json!({"type": "timestamp", "value": "noon"}),
            json!("x".repeat(MAX_VARCHAR_BYTES + 1)),
        ] {
            assert!(MeasureValue::from_json(&bad, None).is_err(), "{bad}");
        }
    }
}
