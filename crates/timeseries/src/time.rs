//! Time: instants in microseconds since the Unix epoch (UTC), RFC 3339 on the wire, and bin
//! widths (`30s`, `1m`, `1h`, `1d`).

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::TsError;

/// An instant, in microseconds since 1970-01-01T00:00:00Z. Timestream keeps nanoseconds;
/// Membrain keeps microseconds (finer digits in the input are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(i64);

pub const MICROS_PER_SECOND: i64 = 1_000_000;

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }

    /// Parses an RFC 3339 time (`2026-11-26T14:00:00Z`, `2026-11-26T15:00:00.5+01:00`).
    pub fn parse(raw: &str) -> Result<Self, TsError> {
        DateTime::parse_from_rfc3339(raw.trim())
            .map(|time| Self(time.timestamp_micros()))
            .map_err(|error| {
                TsError::invalid(
                    "time",
                    format!(
                        "{raw:?} is not an RFC 3339 time ({error}): write it like 2026-11-26T14:05:00Z"
                    ),
                )
            })
    }

    /// Shifted by `micros` (saturating: the ends of time stay the ends).
    pub fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }

    /// The start of the bin of width `bin` holding this instant (bins are aligned to the epoch,
    /// as Timestream's `bin()` is).
    pub fn bin_start(self, bin: Bin) -> Self {
        let width = bin.as_micros();
        Self(self.0.div_euclid(width) * width)
    }

    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(time) => time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            None => format!("@{}us", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl TryFrom<String> for Timestamp {
    type Error = TsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Timestamp> for String {
    fn from(value: Timestamp) -> Self {
        value.to_rfc3339()
    }
}

/// A span of time written as a count and a unit: `500ms`, `30s`, `1m`, `15m`, `1h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span(i64);

impl Span {
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn from_secs(secs: i64) -> Self {
        Self(secs * MICROS_PER_SECOND)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub fn parse(raw: &str) -> Result<Self, TsError> {
        let raw = raw.trim();
        let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
        let (count, unit) = raw.split_at(split);
        let unit_micros: i64 = match unit.trim() {
            "us" => 1,
            "ms" => 1_000,
            "s" => MICROS_PER_SECOND,
            "m" => 60 * MICROS_PER_SECOND,
            "h" => 3_600 * MICROS_PER_SECOND,
            "d" => 86_400 * MICROS_PER_SECOND,
            _ => 0,
        };
        let micros = count
            .parse::<i64>()
            .ok()
            .filter(|count| *count > 0)
            .and_then(|count| count.checked_mul(unit_micros))
            .filter(|micros| *micros > 0);
        micros.map(Self).ok_or_else(|| {
            TsError::invalid(
                "duration",
                format!(
                    "{raw:?} is not a duration: write a positive whole number and a unit \
                     (ms, s, m, h or d), like 30s, 1m, 1h or 7d"
                ),
            )
        })
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, i64); 5] = [
            ("d", 86_400 * MICROS_PER_SECOND),
            ("h", 3_600 * MICROS_PER_SECOND),
            ("m", 60 * MICROS_PER_SECOND),
            ("s", MICROS_PER_SECOND),
            ("ms", 1_000),
        ];
        for (unit, micros) in UNITS {
            if self.0 % micros == 0 {
                return write!(f, "{}{unit}", self.0 / micros);
            }
        }
        write!(f, "{}us", self.0)
    }
}

/// The width of the buckets of a binned range query: at least one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Bin(Span);

impl Bin {
    pub fn parse(raw: &str) -> Result<Self, TsError> {
        let span = Span::parse(raw)?;
        Self::new(span).ok_or_else(|| {
            TsError::invalid(
                "bin",
                format!("bin {raw:?} is shorter than one second: use 1s or more"),
            )
        })
    }

    pub fn new(span: Span) -> Option<Self> {
        (span.as_micros() >= MICROS_PER_SECOND).then_some(Self(span))
    }

    pub fn as_micros(self) -> i64 {
        self.0.as_micros()
    }
}

impl fmt::Display for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<String> for Bin {
    type Error = TsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Bin> for String {
    fn from(value: Bin) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_rfc3339_in_utc() {
        let time = Timestamp::parse("2026-11-26T15:00:00.25+01:00").unwrap();
        assert_eq!(time.to_string(), "2026-11-26T14:00:00.250Z");
        assert_eq!(Timestamp::parse(&time.to_string()).unwrap(), time);
        assert_eq!(
            Timestamp::from_micros(0).to_string(),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn bad_timestamps_say_how_to_write_one() {
        for bad in [
            "",
            "yesterday",
            "2026-11-26",
            "2026-13-01T00:00:00Z",
            "1732630000",
        ] {
            let error = Timestamp::parse(bad).unwrap_err().to_string();
            assert!(error.contains("RFC 3339"), "{bad}: {error}");
        }
    }

    #[test]
    fn spans_parse_and_print() {
        for (raw, micros, shown) in [
            ("30s", 30_000_000, "30s"),
            ("1m", 60_000_000, "1m"),
            ("90m", 5_400_000_000, "90m"),
            ("1h", 3_600_000_000, "1h"),
            ("7d", 604_800_000_000, "7d"),
            ("250ms", 250_000, "250ms"),
        ] {
            let span = Span::parse(raw).unwrap();
            assert_eq!(span.as_micros(), micros, "{raw}");
            assert_eq!(span.to_string(), shown);
        }
        for bad in ["", "m", "0m", "-1m", "1w", "1.5h", "99999999999999999d"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bins_are_at_least_a_second_and_aligned_to_the_epoch() {
        assert!(
            Bin::parse("500ms")
                .unwrap_err()
                .to_string()
                .contains("one second")
        );
        let minute = Bin::parse("1m").unwrap();
        let time = Timestamp::parse("2026-11-26T14:05:42Z").unwrap();
        assert_eq!(time.bin_start(minute).to_string(), "2026-11-26T14:05:00Z");
        let before_epoch = Timestamp::from_micros(-1);
        assert_eq!(before_epoch.bin_start(minute).as_micros(), -60_000_000);
    }
}
