//! Aggregates over the values of one measure in one bucket: `avg`, `min`, `max`, `sum`,
//! `count`, `first` and `last` (by time).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{MeasureType, MeasureValue, Timestamp, TsError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    First,
    Last,
}

impl Aggregate {
    pub const ALL: [Aggregate; 7] = [
        Self::Avg,
        Self::Min,
        Self::Max,
        Self::Sum,
        Self::Count,
        Self::First,
        Self::Last,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::Sum => "sum",
            Self::Count => "count",
            Self::First => "first",
            Self::Last => "last",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, TsError> {
        Self::ALL
            .into_iter()
            .find(|aggregate| aggregate.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| {
                TsError::invalid(
                    "aggregate",
                    format!(
                        "unknown aggregate {raw:?}: use avg, min, max, sum, count, first or last"
                    ),
                )
            })
    }

    /// Whether the aggregate needs numbers (`avg`, `min`, `max`, `sum`).
    pub fn needs_numbers(self) -> bool {
        matches!(self, Self::Avg | Self::Min | Self::Max | Self::Sum)
    }

    /// Whether it applies to a measure of type `kind`.
    pub fn applies_to(self, kind: MeasureType) -> bool {
        !self.needs_numbers() || kind.is_numeric()
    }

    /// The type of the result for a measure of type `kind`.
    pub fn result_type(self, kind: MeasureType) -> MeasureType {
        match self {
            Self::Count => MeasureType::Bigint,
            Self::Avg => MeasureType::Double,
            Self::Sum | Self::Min | Self::Max | Self::First | Self::Last => kind,
        }
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Folds the values of one bucket. Values need not arrive in time order.
#[derive(Debug, Clone)]
pub struct Accumulator {
    aggregate: Aggregate,
    count: i64,
    sum: f64,
    int_sum: i64,
    int_overflow: bool,
    best: Option<(Timestamp, MeasureValue)>,
}

impl Accumulator {
    pub fn new(aggregate: Aggregate) -> Self {
        Self {
            aggregate,
            count: 0,
            sum: 0.0,
            int_sum: 0,
            int_overflow: false,
            best: None,
        }
    }

    pub fn push(&mut self, time: Timestamp, value: &MeasureValue) {
        self.count += 1;
        match self.aggregate {
            Aggregate::Count => {}
            Aggregate::Avg | Aggregate::Sum => {
                if let MeasureValue::Bigint(integer) = value {
                    match self.int_sum.checked_add(*integer) {
                        Some(sum) => self.int_sum = sum,
                        None => self.int_overflow = true,
                    }
                }
                self.sum += value.as_f64().unwrap_or(0.0);
                if self.best.is_none() {
                    self.best = Some((time, value.clone()));
                }
            }
            Aggregate::Min | Aggregate::Max => {
                let better = match &self.best {
                    None => true,
                    Some((_, current)) => {
                        let (new, old) = (value.as_f64(), current.as_f64());
                        match (new, old) {
                            (Some(new), Some(old)) if self.aggregate == Aggregate::Min => new < old,
                            (Some(new), Some(old)) => new > old,
                            _ => false,
                        }
                    }
                };
                if better {
                    self.best = Some((time, value.clone()));
                }
            }
            Aggregate::First | Aggregate::Last => {
                let better = match &self.best {
                    None => true,
                    Some((best_time, _)) if self.aggregate == Aggregate::First => time < *best_time,
                    Some((best_time, _)) => time >= *best_time,
                };
                if better {
                    self.best = Some((time, value.clone()));
                }
            }
        }
    }

    /// The aggregate, or `None` when no value arrived (an empty bucket has no row).
    pub fn finish(&self) -> Option<MeasureValue> {
        if self.count == 0 {
            return None;
        }
        Some(match self.aggregate {
            Aggregate::Count => MeasureValue::Bigint(self.count),
            Aggregate::Avg => MeasureValue::Double(self.sum / self.count as f64),
            Aggregate::Sum => match &self.best {
                Some((_, MeasureValue::Bigint(_))) if !self.int_overflow => {
                    MeasureValue::Bigint(self.int_sum)
                }
                _ => MeasureValue::Double(self.sum),
            },
            Aggregate::Min | Aggregate::Max | Aggregate::First | Aggregate::Last => {
                self.best.as_ref()?.1.clone()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(aggregate: Aggregate, values: &[(i64, MeasureValue)]) -> Option<MeasureValue> {
        let mut accumulator = Accumulator::new(aggregate);
        for (time, value) in values {
            accumulator.push(Timestamp::from_micros(*time), value);
        }
        accumulator.finish()
    }

    #[test]
    fn every_aggregate_over_doubles_in_any_order() {
        let values = [
            (3, MeasureValue::Double(30.0)),
            (1, MeasureValue::Double(10.0)),
            (2, MeasureValue::Double(50.0)),
        ];
        let expect = [
            (Aggregate::Avg, MeasureValue::Double(30.0)),
            (Aggregate::Min, MeasureValue::Double(10.0)),
            (Aggregate::Max, MeasureValue::Double(50.0)),
            (Aggregate::Sum, MeasureValue::Double(90.0)),
            (Aggregate::Count, MeasureValue::Bigint(3)),
            (Aggregate::First, MeasureValue::Double(10.0)),
            (Aggregate::Last, MeasureValue::Double(30.0)),
        ];
        for (aggregate, expected) in expect {
            assert_eq!(fold(aggregate, &values), Some(expected), "{aggregate}");
        }
    }

    #[test]
    fn integer_sums_stay_integers_and_empty_buckets_have_no_value() {
        let values = [(1, MeasureValue::Bigint(2)), (2, MeasureValue::Bigint(5))];
        assert_eq!(fold(Aggregate::Sum, &values), Some(MeasureValue::Bigint(7)));
        assert_eq!(
            fold(Aggregate::Avg, &values),
            Some(MeasureValue::Double(3.5))
        );
        assert_eq!(fold(Aggregate::Max, &[]), None);
        let text = [(1, MeasureValue::Varchar("open".into()))];
        assert_eq!(fold(Aggregate::Count, &text), Some(MeasureValue::Bigint(1)));
        assert_eq!(
            fold(Aggregate::Last, &text),
            Some(MeasureValue::Varchar("open".into()))
        );
        assert!(!Aggregate::Avg.applies_to(MeasureType::Varchar));
        assert_eq!(Aggregate::parse(" AVG ").unwrap(), Aggregate::Avg);
        assert!(
            Aggregate::parse("median")
                .unwrap_err()
                .to_string()
                .contains("avg, min")
        );
    }
}
