//! The values and types a query computes with: a measure's types plus `NULL` and durations
//! (which only live inside expressions, like `now() - 1h`).

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::Value as Json;

use crate::{MeasureType, MeasureValue, Span, Timestamp, TsError};

/// A column's type in a [`QueryResult`](super::QueryResult): a measure type, or `unknown` for a
/// column that is always `NULL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlType {
    Double,
    Bigint,
    Boolean,
    Varchar,
    Timestamp,
    /// Only inside expressions (`bin(time, 1m)`, `now() - 1h`); never a result column.
    Duration,
    /// The type of `NULL`.
    Unknown,
}

impl SqlType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Double => "double",
            Self::Bigint => "bigint",
            Self::Boolean => "boolean",
            Self::Varchar => "varchar",
            Self::Timestamp => "timestamp",
            Self::Duration => "duration",
            Self::Unknown => "unknown",
        }
    }

    pub(crate) fn is_numeric(self) -> bool {
        matches!(self, Self::Double | Self::Bigint)
    }

    /// Whether values of the two types can be compared (`NULL` compares with anything).
    pub(crate) fn comparable_with(self, other: SqlType) -> bool {
        self == other
            || self == Self::Unknown
            || other == Self::Unknown
            || (self.is_numeric() && other.is_numeric())
    }
}

impl From<MeasureType> for SqlType {
    fn from(kind: MeasureType) -> Self {
        match kind {
            MeasureType::Double => Self::Double,
            MeasureType::Bigint => Self::Bigint,
            MeasureType::Boolean => Self::Boolean,
            MeasureType::Varchar => Self::Varchar,
            MeasureType::Timestamp => Self::Timestamp,
        }
    }
}

impl std::fmt::Display for SqlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Boolean(bool),
    Bigint(i64),
    Double(f64),
    Varchar(String),
    Timestamp(Timestamp),
    Duration(Span),
}

impl Value {
    pub(crate) fn kind(&self) -> SqlType {
        match self {
            Self::Null => SqlType::Unknown,
            Self::Boolean(_) => SqlType::Boolean,
            Self::Bigint(_) => SqlType::Bigint,
            Self::Double(_) => SqlType::Double,
            Self::Varchar(_) => SqlType::Varchar,
            Self::Timestamp(_) => SqlType::Timestamp,
            Self::Duration(_) => SqlType::Duration,
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Bigint(value) => Some(*value as f64),
            Self::Double(value) => Some(*value),
            _ => None,
        }
    }

    /// SQL's three-valued truth: `None` is `NULL`.
    pub(crate) fn truth(&self) -> Option<bool> {
        match self {
            Self::Boolean(value) => Some(*value),
            _ => None,
        }
    }

    pub(crate) fn from_truth(truth: Option<bool>) -> Self {
        truth.map_or(Self::Null, Self::Boolean)
    }

    /// The measure form, for the shared aggregate accumulators (`None` for `NULL`).
    pub(crate) fn to_measure(&self) -> Option<MeasureValue> {
        match self {
            Self::Null => None,
            Self::Boolean(value) => Some(MeasureValue::Boolean(*value)),
            Self::Bigint(value) => Some(MeasureValue::Bigint(*value)),
            Self::Double(value) => Some(MeasureValue::Double(*value)),
            Self::Varchar(value) => Some(MeasureValue::Varchar(value.clone())),
            Self::Timestamp(value) => Some(MeasureValue::Timestamp(*value)),
            // Typing keeps durations out of aggregates.
            Self::Duration(span) => Some(MeasureValue::Bigint(span.as_micros())),
        }
    }

    pub(crate) fn to_json(&self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::Boolean(value) => Json::Bool(*value),
            Self::Bigint(value) => Json::from(*value),
            Self::Double(value) => serde_json::Number::from_f64(*value)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Self::Varchar(value) => Json::String(value.clone()),
            Self::Timestamp(value) => Json::String(value.to_rfc3339()),
            Self::Duration(span) => Json::String(span.to_string()),
        }
    }

    /// SQL comparison: `None` when either side is `NULL` or the types do not compare.
    pub(crate) fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Self::Bigint(a), Self::Bigint(b)) => Some(a.cmp(b)),
            (Self::Boolean(a), Self::Boolean(b)) => Some(a.cmp(b)),
            (Self::Varchar(a), Self::Varchar(b)) => Some(a.cmp(b)),
            (Self::Timestamp(a), Self::Timestamp(b)) => Some(a.cmp(b)),
            (Self::Duration(a), Self::Duration(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }

    /// A total order for grouping and sorting: `NULL` first, then by type, then by value.
    pub(crate) fn total_cmp(&self, other: &Value) -> Ordering {
        fn rank(value: &Value) -> u8 {
            match value {
                Value::Null => 0,
                Value::Boolean(_) => 1,
                Value::Bigint(_) | Value::Double(_) => 2,
                Value::Varchar(_) => 3,
                Value::Timestamp(_) => 4,
                Value::Duration(_) => 5,
            }
        }
        match (self.as_f64(), other.as_f64()) {
            (Some(a), Some(b)) => match (self, other) {
                (Self::Bigint(a), Self::Bigint(b)) => a.cmp(b),
                _ => a.total_cmp(&b),
            },
            _ => rank(self)
                .cmp(&rank(other))
                .then_with(|| self.sql_cmp(other).unwrap_or(Ordering::Equal)),
        }
    }
}

impl From<&MeasureValue> for Value {
    fn from(value: &MeasureValue) -> Self {
        match value {
            MeasureValue::Double(value) => Self::Double(*value),
            MeasureValue::Bigint(value) => Self::Bigint(*value),
            MeasureValue::Boolean(value) => Self::Boolean(*value),
            MeasureValue::Varchar(value) => Self::Varchar(value.clone()),
            MeasureValue::Timestamp(value) => Self::Timestamp(*value),
        }
    }
}

/// A row of values ordered by [`Value::total_cmp`], as a group key.
#[derive(Debug, Clone)]
pub(crate) struct GroupKey(pub(crate) Vec<Value>);

impl PartialEq for GroupKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for GroupKey {}

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| a.total_cmp(b))
            .find(|ordering| ordering.is_ne())
            .unwrap_or_else(|| self.0.len().cmp(&other.0.len()))
    }
}

/// The longest `LIKE` pattern accepted, in characters. Real patterns are a prefix or a word
/// with a `%` or two; this bounds the compiled matcher's size (and so its work per row).
pub const MAX_LIKE_PATTERN_CHARS: usize = 256;

/// The most memory one compiled `LIKE` pattern may take (its program and its lazy DFA's cache).
const LIKE_REGEX_BYTES: usize = 1 << 20;

/// A `LIKE` pattern compiled once per query into an anchored regex: `%` is `.*`, `_` is `.`,
/// everything else is literal. The `regex` crate matches in time linear in the text for a
/// given pattern, so no pattern (`%a%a%a%…b`) makes a row cost more than a scan of its text;
/// matching character by character with backtracking would be O(text × pattern) per row.
#[derive(Debug, Clone)]
pub(crate) struct LikePattern {
    source: String,
    regex: regex::Regex,
}

impl PartialEq for LikePattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl LikePattern {
    pub(crate) fn compile(pattern: &str) -> Result<Self, TsError> {
        let chars = pattern.chars().count();
        if chars > MAX_LIKE_PATTERN_CHARS {
            return Err(TsError::Limit(format!(
                "a LIKE pattern has at most {MAX_LIKE_PATTERN_CHARS} characters; this one has \
                 {chars}: shorten it, like 'B1%'"
            )));
        }
        // `(?s)`: `_` and `%` match line breaks too, as in SQL.
        let mut program = String::with_capacity(pattern.len() * 2 + 10);
        program.push_str(r"\A(?s:");
        let mut after_percent = false;
        for c in pattern.chars() {
            match c {
                // A run of `%` means what one does.
                '%' if after_percent => continue,
                '%' => program.push_str(".*"),
                '_' => program.push('.'),
                other => program.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
            }
            after_percent = c == '%';
        }
        program.push_str(r")\z");
        let regex = regex::RegexBuilder::new(&program)
            .size_limit(LIKE_REGEX_BYTES)
            .dfa_size_limit(LIKE_REGEX_BYTES)
            .build()
            .map_err(|_| {
                TsError::Limit(format!(
                    "the LIKE pattern '{pattern}' is too complex to match quickly: use fewer _ \
                     wildcards"
                ))
            })?;
        Ok(Self {
            source: pattern.to_owned(),
            regex,
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

/// SQL `LIKE` of one text and one pattern (tests; queries compile their patterns once).
#[cfg(test)]
pub(crate) fn like(text: &str, pattern: &str) -> bool {
    LikePattern::compile(pattern)
        .expect("a valid pattern")
        .matches(text)
}
