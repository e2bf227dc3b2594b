//! Membrain's own expression tree for the SQL subset, and its evaluation over one record or one
//! group. Parsing produces `Column` references by name; binding against a table turns them into
//! `Time`, `Dimension` or `Measure` and folds constants (`ago(1h)` becomes a time).

use std::fmt;

use crate::{AttributeName, Bin, Dimensions, MeasureValue, Timestamp, TsError};

use super::value::{LikePattern, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Not,
    Negate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    And,
    Or,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Plus,
    Minus,
    Multiply,
    Divide,
}

impl BinaryOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            Self::Eq | Self::NotEq | Self::Lt | Self::LtEq | Self::Gt | Self::GtEq
        )
    }

    /// The same comparison with its sides swapped (`5 < x` is `x > 5`).
    pub(crate) fn flipped(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::LtEq => Self::GtEq,
            Self::Gt => Self::Lt,
            Self::GtEq => Self::LtEq,
            other => other,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::And => "AND",
            Self::Or => "OR",
            Self::Eq => "=",
            Self::NotEq => "<>",
            Self::Lt => "<",
            Self::LtEq => "<=",
            Self::Gt => ">",
            Self::GtEq => ">=",
            Self::Plus => "+",
            Self::Minus => "-",
            Self::Multiply => "*",
            Self::Divide => "/",
        }
    }
}

/// The scalar functions of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    Now,
    Ago,
    FromIso8601Timestamp,
    Bin,
}

impl Function {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Now => "now",
            Self::Ago => "ago",
            Self::FromIso8601Timestamp => "from_iso8601_timestamp",
            Self::Bin => "bin",
        }
    }
}

/// The aggregate functions of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggregateFunction {
    /// One of the shared aggregates, folded by [`crate::Accumulator`].
    Shared(crate::Aggregate),
    CountRows,
    MaxBy,
    MinBy,
}

impl AggregateFunction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Shared(aggregate) => aggregate.as_str(),
            Self::CountRows => "count",
            Self::MaxBy => "max_by",
            Self::MinBy => "min_by",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A name as written, before binding.
    Column(String),
    Time,
    Dimension(AttributeName),
    Measure(AttributeName),
    Literal(Value),
    Call(Function, Vec<Expr>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    /// `LIKE` as written; binding turns it into `Matches` (the pattern must be constant).
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
    },
    /// After binding: `LIKE` with its pattern compiled once for the whole query.
    Matches {
        expr: Box<Expr>,
        pattern: LikePattern,
        negated: bool,
    },
    Aggregate(AggregateFunction, Vec<Expr>),
    /// After grouping: the value of the i-th `GROUP BY` key.
    GroupKey(usize),
    /// After grouping: the result of the i-th aggregate.
    AggregateResult(usize),
}

impl Expr {
    pub(crate) fn children(&self) -> Vec<&Expr> {
        match self {
            Self::Column(_)
            | Self::Time
            | Self::Dimension(_)
            | Self::Measure(_)
            | Self::Literal(_)
            | Self::GroupKey(_)
            | Self::AggregateResult(_) => Vec::new(),
            Self::Call(_, args) | Self::Aggregate(_, args) => args.iter().collect(),
            Self::Unary(_, expr) | Self::IsNull { expr, .. } | Self::Matches { expr, .. } => {
                vec![expr]
            }
            Self::Binary(_, left, right) => vec![left, right],
            Self::Between {
                expr, low, high, ..
            } => vec![expr, low, high],
            Self::InList { expr, list, .. } => std::iter::once(&**expr).chain(list).collect(),
            Self::Like { expr, pattern, .. } => vec![expr, pattern],
        }
    }

    /// Whether any node satisfies `predicate`.
    pub(crate) fn any(&self, predicate: &dyn Fn(&Expr) -> bool) -> bool {
        predicate(self)
            || self
                .children()
                .into_iter()
                .any(|child| child.any(predicate))
    }

    pub(crate) fn has_aggregate(&self) -> bool {
        self.any(&|expr| matches!(expr, Expr::Aggregate(..)))
    }

    /// Whether the value depends on no record (so it can be computed once).
    pub(crate) fn is_constant(&self) -> bool {
        !self.any(&|expr| {
            matches!(
                expr,
                Expr::Column(_)
                    | Expr::Time
                    | Expr::Dimension(_)
                    | Expr::Measure(_)
                    | Expr::Aggregate(..)
                    | Expr::GroupKey(_)
                    | Expr::AggregateResult(_)
            )
        })
    }
}

impl fmt::Display for Expr {
    /// The canonical SQL text, used to name result columns without an alias.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn nested(f: &mut fmt::Formatter<'_>, expr: &Expr) -> fmt::Result {
            match expr {
                Expr::Binary(..)
                | Expr::Between { .. }
                | Expr::InList { .. }
                | Expr::Like { .. }
                | Expr::Matches { .. } => {
                    write!(f, "({expr})")
                }
                other => write!(f, "{other}"),
            }
        }
        fn list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        let not = |negated: bool| if negated { "NOT " } else { "" };
        match self {
            Self::Column(name) => f.write_str(name),
            Self::Time => f.write_str("time"),
            Self::Dimension(name) | Self::Measure(name) => write!(f, "{name}"),
            Self::Literal(value) => match value {
                Value::Null => f.write_str("NULL"),
                Value::Varchar(text) => write!(f, "'{}'", text.replace('\'', "''")),
                Value::Timestamp(time) => write!(f, "from_iso8601_timestamp('{time}')"),
                Value::Duration(span) => write!(f, "{span}"),
                other => write!(f, "{}", other.to_json()),
            },
            Self::Call(function, args) => {
                write!(f, "{}(", function.as_str())?;
                list(f, args)?;
                f.write_str(")")
            }
            Self::Unary(UnaryOp::Not, expr) => {
                f.write_str("NOT ")?;
                nested(f, expr)
            }
            Self::Unary(UnaryOp::Negate, expr) => {
                f.write_str("-")?;
                nested(f, expr)
            }
            Self::Binary(op, left, right) => {
                nested(f, left)?;
                write!(f, " {} ", op.as_str())?;
                nested(f, right)
            }
            Self::Between {
                expr,
                low,
                high,
                negated,
            } => {
                nested(f, expr)?;
                write!(f, " {}BETWEEN ", not(*negated))?;
                nested(f, low)?;
                f.write_str(" AND ")?;
                nested(f, high)
            }
            Self::InList {
                expr,
                list: items,
                negated,
            } => {
                nested(f, expr)?;
                write!(f, " {}IN (", not(*negated))?;
                list(f, items)?;
                f.write_str(")")
            }
            Self::IsNull { expr, negated } => {
                nested(f, expr)?;
                write!(f, " IS {}NULL", not(*negated))
            }
            Self::Like {
                expr,
                pattern,
                negated,
            } => {
                nested(f, expr)?;
                write!(f, " {}LIKE ", not(*negated))?;
                nested(f, pattern)
            }
            Self::Matches {
                expr,
                pattern,
                negated,
            } => {
                nested(f, expr)?;
                write!(
                    f,
                    " {}LIKE '{}'",
                    not(*negated),
                    pattern.source().replace('\'', "''")
                )
            }
            Self::Aggregate(AggregateFunction::CountRows, _) => f.write_str("count(*)"),
            Self::Aggregate(function, args) => {
                write!(f, "{}(", function.as_str())?;
                list(f, args)?;
                f.write_str(")")
            }
            Self::GroupKey(index) => write!(f, "#key{index}"),
            Self::AggregateResult(index) => write!(f, "#aggregate{index}"),
        }
    }
}

/// What an expression is evaluated against: one record, or one group's keys and aggregates.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Row<'a> {
    pub(crate) time: Option<Timestamp>,
    pub(crate) dimensions: Option<&'a Dimensions>,
    pub(crate) measures: &'a [(AttributeName, MeasureValue)],
    pub(crate) group_keys: &'a [Value],
    pub(crate) aggregates: &'a [Value],
}

impl Row<'_> {
    fn measure(&self, name: &AttributeName) -> Value {
        // Points carry a handful of measures; a linear look-up does not rely on their order.
        self.measures
            .iter()
            .find(|(key, _)| key == name)
            .map_or(Value::Null, |(_, value)| Value::from(value))
    }
}

/// Evaluates a bound expression. `now` is only read by an unfolded `now()`.
pub(crate) fn eval(expr: &Expr, row: &Row<'_>, now: Timestamp) -> Result<Value, TsError> {
    Ok(match expr {
        Expr::Column(name) => {
            return Err(TsError::Internal(format!(
                "column {name} was evaluated before binding"
            )));
        }
        Expr::Time => row.time.map_or(Value::Null, Value::Timestamp),
        Expr::Dimension(name) => row
            .dimensions
            .and_then(|dimensions| dimensions.get(name.as_str()))
            .map_or(Value::Null, |value| Value::Varchar(value.to_owned())),
        Expr::Measure(name) => row.measure(name),
        Expr::Literal(value) => value.clone(),
        Expr::GroupKey(index) => row.group_keys.get(*index).cloned().unwrap_or(Value::Null),
        Expr::AggregateResult(index) => row.aggregates.get(*index).cloned().unwrap_or(Value::Null),
        Expr::Aggregate(..) => {
            return Err(TsError::Internal(format!(
                "aggregate {expr} was evaluated outside grouping"
            )));
        }
        Expr::Call(function, args) => {
            let values = args
                .iter()
                .map(|arg| eval(arg, row, now))
                .collect::<Result<Vec<_>, _>>()?;
            call(*function, &values, now)?
        }
        Expr::Unary(op, inner) => match (op, eval(inner, row, now)?) {
            (UnaryOp::Not, value) => Value::from_truth(value.truth().map(|truth| !truth)),
            (UnaryOp::Negate, Value::Bigint(value)) => {
                value.checked_neg().map_or(Value::Null, Value::Bigint)
            }
            (UnaryOp::Negate, Value::Double(value)) => Value::Double(-value),
            (UnaryOp::Negate, Value::Duration(span)) => {
                Value::Duration(crate::Span::from_micros(-span.as_micros()))
            }
            (UnaryOp::Negate, _) => Value::Null,
        },
        Expr::Binary(BinaryOp::And, left, right) => {
            let left = eval(left, row, now)?.truth();
            if left == Some(false) {
                return Ok(Value::Boolean(false));
            }
            let right = eval(right, row, now)?.truth();
            Value::from_truth(match (left, right) {
                (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            })
        }
        Expr::Binary(BinaryOp::Or, left, right) => {
            let left = eval(left, row, now)?.truth();
            if left == Some(true) {
                return Ok(Value::Boolean(true));
            }
            let right = eval(right, row, now)?.truth();
            Value::from_truth(match (left, right) {
                (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            })
        }
        Expr::Binary(op, left, right) => {
            binary(*op, &eval(left, row, now)?, &eval(right, row, now)?)
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let value = eval(expr, row, now)?;
            let above = value
                .sql_cmp(&eval(low, row, now)?)
                .map(|ordering| ordering.is_ge());
            let below = value
                .sql_cmp(&eval(high, row, now)?)
                .map(|ordering| ordering.is_le());
            let inside = match (above, below) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            Value::from_truth(inside.map(|inside| inside != *negated))
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let value = eval(expr, row, now)?;
            let mut found = Some(false);
            for item in list {
                match value.sql_cmp(&eval(item, row, now)?) {
                    Some(ordering) if ordering.is_eq() => {
                        found = Some(true);
                        break;
                    }
                    Some(_) => {}
                    None => found = None,
                }
            }
            Value::from_truth(found.map(|found| found != *negated))
        }
        Expr::IsNull { expr, negated } => {
            Value::Boolean((eval(expr, row, now)? == Value::Null) != *negated)
        }
        Expr::Like { .. } => {
            return Err(TsError::Internal(format!(
                "{expr} was evaluated before its pattern was compiled"
            )));
        }
        Expr::Matches {
            expr,
            pattern,
            negated,
        } => match eval(expr, row, now)? {
            Value::Varchar(text) => Value::Boolean(pattern.matches(&text) != *negated),
            _ => Value::Null,
        },
    })
}

fn call(function: Function, args: &[Value], now: Timestamp) -> Result<Value, TsError> {
    Ok(match (function, args) {
        (Function::Now, []) => Value::Timestamp(now),
        (Function::Ago, [Value::Duration(span)]) => {
            Value::Timestamp(now.plus_micros(-span.as_micros()))
        }
        (Function::FromIso8601Timestamp, [Value::Varchar(text)]) => {
            Value::Timestamp(Timestamp::parse(text).map_err(|error| {
                TsError::invalid(
                    "sql",
                    format!("from_iso8601_timestamp: {}", error.message()),
                )
            })?)
        }
        (Function::Bin, [Value::Timestamp(time), Value::Duration(span)]) => match Bin::new(*span) {
            Some(bin) => Value::Timestamp(time.bin_start(bin)),
            None => {
                return Err(TsError::invalid(
                    "sql",
                    format!("bin width {span} is shorter than one second: use 1s or more"),
                ));
            }
        },
        _ => Value::Null,
    })
}

fn binary(op: BinaryOp, left: &Value, right: &Value) -> Value {
    use BinaryOp::*;
    if op.is_comparison() {
        return Value::from_truth(left.sql_cmp(right).map(|ordering| match op {
            Eq => ordering.is_eq(),
            NotEq => ordering.is_ne(),
            Lt => ordering.is_lt(),
            LtEq => ordering.is_le(),
            Gt => ordering.is_gt(),
            _ => ordering.is_ge(),
        }));
    }
    match (op, left, right) {
        (Plus, Value::Timestamp(time), Value::Duration(span))
        | (Plus, Value::Duration(span), Value::Timestamp(time)) => {
            Value::Timestamp(time.plus_micros(span.as_micros()))
        }
        (Minus, Value::Timestamp(time), Value::Duration(span)) => {
            Value::Timestamp(time.plus_micros(-span.as_micros()))
        }
        (_, Value::Bigint(a), Value::Bigint(b)) => {
            let result = match op {
                Plus => a.checked_add(*b),
                Minus => a.checked_sub(*b),
                Multiply => a.checked_mul(*b),
                // Integer division, as Presto and Timestream divide bigints.
                _ => a.checked_div(*b),
            };
            result.map_or(Value::Null, Value::Bigint)
        }
        (_, a, b) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => {
                let result = match op {
                    Plus => a + b,
                    Minus => a - b,
                    Multiply => a * b,
                    _ => a / b,
                };
                if result.is_finite() {
                    Value::Double(result)
                } else {
                    Value::Null
                }
            }
            _ => Value::Null,
        },
    }
}

impl Expr {
    /// Rebuilds the node with `f` applied to each direct child.
    pub(crate) fn try_map_children(
        self,
        f: &mut dyn FnMut(Expr) -> Result<Expr, TsError>,
    ) -> Result<Expr, TsError> {
        let mut boxed = |expr: Box<Expr>| f(*expr).map(Box::new);
        Ok(match self {
            Self::Call(function, args) => Self::Call(
                function,
                args.into_iter().map(&mut *f).collect::<Result<_, _>>()?,
            ),
            Self::Aggregate(function, args) => Self::Aggregate(
                function,
                args.into_iter().map(&mut *f).collect::<Result<_, _>>()?,
            ),
            Self::Unary(op, expr) => Self::Unary(op, boxed(expr)?),
            Self::Binary(op, left, right) => Self::Binary(op, boxed(left)?, boxed(right)?),
            Self::Between {
                expr,
                low,
                high,
                negated,
            } => Self::Between {
                expr: boxed(expr)?,
                low: boxed(low)?,
                high: boxed(high)?,
                negated,
            },
            Self::InList {
                expr,
                list,
                negated,
            } => Self::InList {
                expr: boxed(expr)?,
                list: list.into_iter().map(&mut *f).collect::<Result<_, _>>()?,
                negated,
            },
            Self::IsNull { expr, negated } => Self::IsNull {
                expr: boxed(expr)?,
                negated,
            },
            Self::Like {
                expr,
                pattern,
                negated,
            } => Self::Like {
                expr: boxed(expr)?,
                pattern: boxed(pattern)?,
                negated,
            },
            Self::Matches {
                expr,
                pattern,
                negated,
            } => Self::Matches {
                expr: boxed(expr)?,
                pattern,
                negated,
            },
            leaf => leaf,
        })
    }
}
