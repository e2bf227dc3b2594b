//! A parsed query checked against its table: names bound to `time`, dimensions and measures,
//! types checked, constants folded (`ago(1h)` is a time here), grouping resolved, and the part of
//! the `WHERE` clause a store can apply itself (the [`Scan`]).

use std::collections::BTreeSet;

use crate::{AttributeName, DimensionFilter, Scan, TableRef, TableSchema, Timestamp, TsError};

use super::expr::{AggregateFunction, BinaryOp, Expr, Function, Row, UnaryOp, eval};
use super::value::{LikePattern, SqlType, Value};
use super::{Column, OrderItem, SelectItem, SqlQuery};

/// What an `ORDER BY` item sorts on: a result column or an extra hidden value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SortKey {
    /// Index into the row of outputs followed by hidden sort values.
    pub(crate) index: usize,
    pub(crate) descending: bool,
    pub(crate) nulls_first: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grouping {
    pub(crate) keys: Vec<Expr>,
    /// Each distinct aggregate call, as `AggregateResult(i)` refers to it.
    pub(crate) aggregates: Vec<(AggregateFunction, Vec<Expr>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) columns: Vec<Column>,
    /// Result columns then hidden sort values; over records, or over groups when grouping.
    pub(crate) values: Vec<Expr>,
    pub(crate) filter: Option<Expr>,
    pub(crate) grouping: Option<Grouping>,
    pub(crate) order: Vec<SortKey>,
    pub(crate) limit: Option<usize>,
    /// The measures the query reads (`None`: every measure).
    pub(crate) measures: Option<Vec<AttributeName>>,
}

/// A bound expression and its type.
type Typed = (Expr, SqlType);

struct Binder<'a> {
    table: &'a TableRef,
    schema: &'a TableSchema,
    now: Timestamp,
}

fn invalid(message: String) -> TsError {
    TsError::invalid("sql", message)
}

impl Binder<'_> {
    fn columns_list(&self) -> String {
        std::iter::once("time")
            .chain(self.schema.dimensions.iter().map(AttributeName::as_str))
            .chain(self.schema.measures.keys().map(AttributeName::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn is_column(&self, name: &str) -> bool {
        self.resolve(name).is_ok()
    }

    fn resolve(&self, name: &str) -> Result<(Expr, SqlType), TsError> {
        if name.eq_ignore_ascii_case("time") {
            return Ok((Expr::Time, SqlType::Timestamp));
        }
        // An exact match first, then one that differs only in case (SQL folds unquoted names).
        for exact in [true, false] {
            let same = |candidate: &str| {
                if exact {
                    candidate == name
                } else {
                    candidate.eq_ignore_ascii_case(name)
                }
            };
            if let Some(dimension) = self.schema.dimensions.iter().find(|d| same(d.as_str())) {
                return Ok((Expr::Dimension(dimension.clone()), SqlType::Varchar));
            }
            if let Some((measure, kind)) = self
                .schema
                .measures
                .iter()
                .find(|(name, _)| same(name.as_str()))
            {
                return Ok((Expr::Measure(measure.clone()), (*kind).into()));
            }
        }
        Err(invalid(format!(
            "unknown column {name} in {}: its columns are {}",
            self.table,
            self.columns_list()
        )))
    }

    /// Binds names, checks types and folds constant parts.
    fn bind(&self, expr: Expr) -> Result<(Expr, SqlType), TsError> {
        let (bound, kind) = self.bind_node(expr)?;
        if bound.is_constant() && !matches!(bound, Expr::Literal(_)) {
            let value = eval(&bound, &Row::default(), self.now)?;
            return Ok((Expr::Literal(value), kind));
        }
        Ok((bound, kind))
    }

    fn bind_boolean(&self, expr: Expr, place: &str) -> Result<Expr, TsError> {
        let shown = expr.to_string();
        let (bound, kind) = self.bind(expr)?;
        if !matches!(kind, SqlType::Boolean | SqlType::Unknown) {
            return Err(invalid(format!(
                "{place} needs a condition but {shown} is {kind}: compare it, like {shown} > 0"
            )));
        }
        Ok(bound)
    }

    /// Binds the two sides of a comparison.
    fn bind_comparable(&self, left: Expr, right: Expr) -> Result<(Typed, Typed), TsError> {
        let (left_shown, right_shown) = (left.to_string(), right.to_string());
        let left = self.bind(left)?;
        let right = self.bind(right)?;
        comparable(left, &left_shown, right, &right_shown)
    }

    fn bind_node(&self, expr: Expr) -> Result<(Expr, SqlType), TsError> {
        let shown = expr.to_string();
        Ok(match expr {
            Expr::Column(name) => self.resolve(&name)?,
            Expr::Literal(value) => {
                let kind = value.kind();
                (Expr::Literal(value), kind)
            }
            Expr::Time | Expr::Dimension(_) | Expr::Measure(_) => {
                return Err(TsError::Internal(format!("{shown} was bound twice")));
            }
            Expr::GroupKey(_) | Expr::AggregateResult(_) | Expr::Matches { .. } => {
                return Err(TsError::Internal(format!(
                    "{shown} appeared before binding"
                )));
            }
            Expr::Call(function, args) => {
                let args = args
                    .into_iter()
                    .map(|arg| self.bind(arg))
                    .collect::<Result<Vec<_>, _>>()?;
                let kinds: Vec<SqlType> = args.iter().map(|(_, kind)| *kind).collect();
                let fits = match function {
                    Function::Now => kinds.is_empty(),
                    Function::Ago => kinds == [SqlType::Duration],
                    Function::FromIso8601Timestamp => {
                        matches!(kinds.as_slice(), [SqlType::Varchar | SqlType::Unknown])
                    }
                    Function::Bin => {
                        matches!(kinds.as_slice(), [SqlType::Timestamp, SqlType::Duration])
                            && matches!(args[1].0, Expr::Literal(_))
                    }
                };
                if !fits {
                    let usage = match function {
                        Function::Now => "now()",
                        Function::Ago => "ago(1h)",
                        Function::FromIso8601Timestamp => {
                            "from_iso8601_timestamp('2026-11-26T14:00:00Z')"
                        }
                        Function::Bin => "bin(time, 5m)",
                    };
                    return Err(invalid(format!("{shown}: write it like {usage}")));
                }
                let args = args.into_iter().map(|(arg, _)| arg).collect();
                (Expr::Call(function, args), SqlType::Timestamp)
            }
            Expr::Unary(op, inner) => {
                let (inner, kind) = self.bind(*inner)?;
                let result = match (op, kind) {
                    (UnaryOp::Not, SqlType::Boolean | SqlType::Unknown) => SqlType::Boolean,
                    (UnaryOp::Negate, kind) if kind.is_numeric() || kind == SqlType::Duration => {
                        kind
                    }
                    (UnaryOp::Negate, SqlType::Unknown) => SqlType::Unknown,
                    _ => return Err(invalid(format!("{shown}: {kind} does not apply here"))),
                };
                (Expr::Unary(op, Box::new(inner)), result)
            }
            Expr::Binary(op, left, right) if op.is_comparison() => {
                let ((left, _), (right, _)) = self.bind_comparable(*left, *right)?;
                (
                    Expr::Binary(op, Box::new(left), Box::new(right)),
                    SqlType::Boolean,
                )
            }
            Expr::Binary(op @ (BinaryOp::And | BinaryOp::Or), left, right) => {
                let left = self.bind_boolean(*left, "AND/OR")?;
                let right = self.bind_boolean(*right, "AND/OR")?;
                (
                    Expr::Binary(op, Box::new(left), Box::new(right)),
                    SqlType::Boolean,
                )
            }
            Expr::Binary(op, left, right) => {
                let (left, left_kind) = self.bind(*left)?;
                let (right, right_kind) = self.bind(*right)?;
                use SqlType::*;
                let result = match (op, left_kind, right_kind) {
                    (BinaryOp::Plus | BinaryOp::Minus, Timestamp, Duration)
                    | (BinaryOp::Plus, Duration, Timestamp) => Timestamp,
                    (_, Bigint, Bigint) => Bigint,
                    (_, a, b) if a.is_numeric() && b.is_numeric() => Double,
                    (_, Unknown, _) | (_, _, Unknown) => Unknown,
                    _ => {
                        return Err(invalid(format!(
                            "{shown}: cannot combine {left_kind} and {right_kind}; arithmetic \
                             works on numbers, and time ± a duration like 1h"
                        )));
                    }
                };
                (Expr::Binary(op, Box::new(left), Box::new(right)), result)
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let shown = [expr.to_string(), low.to_string(), high.to_string()];
                let (expr, low, high) = (self.bind(*expr)?, self.bind(*low)?, self.bind(*high)?);
                let (expr, (low, _)) = comparable(expr, &shown[0], low, &shown[1])?;
                let ((expr, _), (high, _)) = comparable(expr, &shown[0], high, &shown[2])?;
                (
                    Expr::Between {
                        expr: Box::new(expr),
                        low: Box::new(low),
                        high: Box::new(high),
                        negated,
                    },
                    SqlType::Boolean,
                )
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let expr_shown = expr.to_string();
                let mut bound = self.bind(*expr)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    let item_shown = item.to_string();
                    let item = self.bind(item)?;
                    let (expr, (item, _)) = comparable(bound, &expr_shown, item, &item_shown)?;
                    bound = expr;
                    items.push(item);
                }
                let (bound, list) = (bound.0, items);
                (
                    Expr::InList {
                        expr: Box::new(bound),
                        list,
                        negated,
                    },
                    SqlType::Boolean,
                )
            }
            Expr::IsNull { expr, negated } => {
                let (expr, _) = self.bind(*expr)?;
                (
                    Expr::IsNull {
                        expr: Box::new(expr),
                        negated,
                    },
                    SqlType::Boolean,
                )
            }
            Expr::Like {
                expr,
                pattern,
                negated,
            } => {
                let (expr, kind) = self.bind(*expr)?;
                let (pattern, pattern_kind) = self.bind(*pattern)?;
                let text = |kind| matches!(kind, SqlType::Varchar | SqlType::Unknown);
                if !text(kind) || !text(pattern_kind) {
                    return Err(invalid(format!(
                        "{shown}: LIKE compares text with a pattern like 'B1%'"
                    )));
                }
                match pattern {
                    Expr::Literal(Value::Varchar(pattern)) => (
                        Expr::Matches {
                            expr: Box::new(expr),
                            pattern: LikePattern::compile(&pattern)?,
                            negated,
                        },
                        SqlType::Boolean,
                    ),
                    // LIKE NULL is NULL for every row.
                    Expr::Literal(Value::Null) => (Expr::Literal(Value::Null), SqlType::Boolean),
                    _ => {
                        return Err(invalid(format!(
                            "{shown}: the pattern of LIKE must be a constant text, like \
                             bus_id LIKE 'B1%'"
                        )));
                    }
                }
            }
            Expr::Aggregate(function, args) => {
                let args = args
                    .into_iter()
                    .map(|arg| {
                        if arg.has_aggregate() {
                            return Err(invalid(format!(
                                "{shown}: an aggregate cannot contain another aggregate"
                            )));
                        }
                        self.bind(arg)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let kinds: Vec<SqlType> = args.iter().map(|(_, kind)| *kind).collect();
                let result = aggregate_type(function, &kinds).ok_or_else(|| {
                    invalid(format!(
                        "{shown}: {} needs {}",
                        match function {
                            AggregateFunction::Shared(aggregate) => aggregate.as_str(),
                            AggregateFunction::CountRows => "count",
                            AggregateFunction::MaxBy => "max_by",
                            AggregateFunction::MinBy => "min_by",
                        },
                        match function {
                            AggregateFunction::MaxBy | AggregateFunction::MinBy => {
                                "a value and a number or time to rank by, like max_by(speed, time)"
                            }
                            _ => "a numeric column; use count, first or last for others",
                        }
                    ))
                })?;
                let args = args.into_iter().map(|(arg, _)| arg).collect();
                (Expr::Aggregate(function, args), result)
            }
        })
    }
}

/// Checks that two bound sides compare, reading a string literal as a time when the other side
/// is a time (`time > '2026-11-26T14:00:00Z'`).
fn comparable(
    left: (Expr, SqlType),
    left_shown: &str,
    right: (Expr, SqlType),
    right_shown: &str,
) -> Result<(Typed, Typed), TsError> {
    let (left_kind, right_kind) = (left.1, right.1);
    let (left, right) = (coerce(left, right_kind)?, coerce(right, left_kind)?);
    if !left.1.comparable_with(right.1) {
        let hint = if left.1 == SqlType::Varchar || right.1 == SqlType::Varchar {
            ": quote text values, like bus_id = 'B12'"
        } else {
            ""
        };
        return Err(invalid(format!(
            "cannot compare {left_shown} ({}) with {right_shown} ({}){hint}",
            left.1, right.1
        )));
    }
    Ok((left, right))
}

fn coerce((expr, kind): (Expr, SqlType), other: SqlType) -> Result<(Expr, SqlType), TsError> {
    match (&expr, other) {
        (Expr::Literal(Value::Varchar(text)), SqlType::Timestamp) => {
            let time = Timestamp::parse(text)
                .map_err(|error| invalid(format!("'{text}' is not a time: {}", error.message())))?;
            Ok((Expr::Literal(Value::Timestamp(time)), SqlType::Timestamp))
        }
        _ => Ok((expr, kind)),
    }
}

fn aggregate_type(function: AggregateFunction, kinds: &[SqlType]) -> Option<SqlType> {
    use crate::Aggregate;
    let rankable =
        |kind: SqlType| kind.is_numeric() || matches!(kind, SqlType::Timestamp | SqlType::Varchar);
    match (function, kinds) {
        (AggregateFunction::CountRows, []) => Some(SqlType::Bigint),
        (AggregateFunction::Shared(Aggregate::Count), [_]) => Some(SqlType::Bigint),
        (AggregateFunction::Shared(Aggregate::Avg), [kind]) if kind.is_numeric() => {
            Some(SqlType::Double)
        }
        (AggregateFunction::Shared(Aggregate::Sum | Aggregate::Min | Aggregate::Max), [kind])
            if kind.is_numeric() =>
        {
            Some(*kind)
        }
        (AggregateFunction::Shared(Aggregate::First | Aggregate::Last), [kind])
            if *kind != SqlType::Duration =>
        {
            Some(*kind)
        }
        (AggregateFunction::MaxBy | AggregateFunction::MinBy, [value, rank])
            if *value != SqlType::Duration && rankable(*rank) =>
        {
            Some(*value)
        }
        _ => None,
    }
}

impl Plan {
    pub(crate) fn new(
        query: &SqlQuery,
        schema: &TableSchema,
        now: Timestamp,
    ) -> Result<Self, TsError> {
        let binder = Binder {
            table: &query.table,
            schema,
            now,
        };
        // The result columns, with `*` spelled out.
        let mut outputs: Vec<(String, Expr)> = Vec::new();
        let mut wildcard = false;
        for item in &query.projection {
            match item {
                SelectItem::Wildcard => {
                    wildcard = true;
                    outputs.push(("time".into(), Expr::Column("time".into())));
                    for name in schema.dimensions.iter().chain(schema.measures.keys()) {
                        outputs.push((name.to_string(), Expr::Column(name.to_string())));
                    }
                }
                SelectItem::Expr { expr, name, .. } => outputs.push((name.clone(), expr.clone())),
            }
        }
        let mut columns = Vec::with_capacity(outputs.len());
        let mut values = Vec::with_capacity(outputs.len());
        for (name, expr) in &outputs {
            let (bound, kind) = binder.bind(expr.clone())?;
            if kind == SqlType::Duration {
                return Err(invalid(format!(
                    "{name} is a duration, which is not a result: use it in bin(time, 1h), \
                     ago(1h) or time ± 1h"
                )));
            }
            columns.push(Column {
                name: name.clone(),
                kind,
            });
            values.push(bound);
        }

        let filter = match &query.filter {
            None => None,
            Some(filter) => {
                if filter.has_aggregate() {
                    return Err(invalid(format!(
                        "WHERE {filter}: aggregates are not allowed in WHERE (it filters records \
                         before they are grouped)"
                    )));
                }
                Some(binder.bind_boolean(filter.clone(), "WHERE")?)
            }
        };

        // GROUP BY items may be ordinals or result aliases as well as expressions.
        let aliased = |name: &str| {
            query.projection.iter().find_map(|item| match item {
                SelectItem::Expr {
                    expr,
                    name: alias,
                    aliased: true,
                } if alias == name => Some(expr.clone()),
                _ => None,
            })
        };
        let mut keys = Vec::with_capacity(query.group_by.len());
        for item in &query.group_by {
            let expr = match item {
                Expr::Literal(Value::Bigint(ordinal)) => {
                    ordinal_output(&outputs, *ordinal, "GROUP BY")?.1.clone()
                }
                Expr::Column(name) if !binder.is_column(name) => {
                    aliased(name).unwrap_or_else(|| item.clone())
                }
                other => other.clone(),
            };
            if expr.has_aggregate() {
                return Err(invalid(format!(
                    "GROUP BY {expr}: group by columns or bin(time, …), not by an aggregate"
                )));
            }
            keys.push(binder.bind(expr)?.0);
        }

        // ORDER BY items name a result column (by alias, name or ordinal) or any expression.
        let mut order = Vec::with_capacity(query.order_by.len());
        let mut hidden = Vec::new();
        for OrderItem {
            expr,
            descending,
            nulls_first,
        } in &query.order_by
        {
            let index = match expr {
                Expr::Literal(Value::Bigint(ordinal)) => {
                    ordinal_output(&outputs, *ordinal, "ORDER BY")?;
                    usize::try_from(*ordinal - 1).unwrap_or_default()
                }
                Expr::Column(name) if outputs.iter().any(|(output, _)| output == name) => outputs
                    .iter()
                    .position(|(output, _)| output == name)
                    .unwrap_or_default(),
                other => {
                    let (bound, _) = binder.bind(other.clone())?;
                    match values.iter().position(|value| *value == bound) {
                        Some(index) => index,
                        None => {
                            hidden.push(bound);
                            outputs.len() + hidden.len() - 1
                        }
                    }
                }
            };
            order.push(SortKey {
                index,
                descending: *descending,
                // Timestream (Presto) sorts NULL last unless told otherwise.
                nulls_first: nulls_first.unwrap_or(false),
            });
        }
        values.extend(hidden);

        let measures = measures_read(&values, filter.as_ref(), &keys, wildcard);
        let grouped = !keys.is_empty() || values.iter().any(Expr::has_aggregate);
        let grouping = if grouped {
            let mut aggregates = Vec::new();
            values = values
                .into_iter()
                .map(|value| over_groups(value, &keys, &mut aggregates))
                .collect::<Result<_, _>>()?;
            Some(Grouping { keys, aggregates })
        } else {
            None
        };
        Ok(Self {
            columns,
            values,
            filter,
            grouping,
            order,
            limit: query.limit,
            measures,
        })
    }

    /// The store read: time-range and dimension-equality conditions ANDed at the top of `WHERE`.
    pub(crate) fn scan(&self, table: &TableRef) -> Scan {
        let mut start: Option<Timestamp> = None;
        let mut end: Option<Timestamp> = None;
        let mut dimensions: Vec<(AttributeName, String)> = Vec::new();
        let mut later_start = |time: Timestamp| {
            start = Some(start.map_or(time, |start| start.max(time)));
        };
        let mut earlier_end = |time: Timestamp| {
            end = Some(end.map_or(time, |end| end.min(time)));
        };
        let mut conjuncts = Vec::new();
        if let Some(filter) = &self.filter {
            collect_conjuncts(filter, &mut conjuncts);
        }
        for conjunct in conjuncts {
            match conjunct {
                Expr::Binary(op, left, right) if op.is_comparison() => {
                    let (column, op, literal) = match (&**left, &**right) {
                        (Expr::Literal(literal), column) => (column, op.flipped(), literal),
                        (column, literal) => match literal {
                            Expr::Literal(literal) => (column, *op, literal),
                            _ => continue,
                        },
                    };
                    match (column, literal) {
                        (Expr::Time, Value::Timestamp(time)) => {
                            let next = time.plus_micros(1);
                            match op {
                                BinaryOp::Gt => later_start(next),
                                BinaryOp::GtEq => later_start(*time),
                                BinaryOp::Lt => earlier_end(*time),
                                BinaryOp::LtEq => earlier_end(next),
                                BinaryOp::Eq => {
                                    later_start(*time);
                                    earlier_end(next);
                                }
                                _ => {}
                            }
                        }
                        (Expr::Dimension(name), Value::Varchar(value)) if op == BinaryOp::Eq => {
                            dimensions.push((name.clone(), value.clone()));
                        }
                        _ => {}
                    }
                }
                Expr::Between {
                    expr,
                    low,
                    high,
                    negated: false,
                } => {
                    if let (
                        Expr::Time,
                        Expr::Literal(Value::Timestamp(low)),
                        Expr::Literal(Value::Timestamp(high)),
                    ) = (&**expr, &**low, &**high)
                    {
                        later_start(*low);
                        earlier_end(high.plus_micros(1));
                    }
                }
                Expr::InList {
                    expr,
                    list,
                    negated: false,
                } => {
                    if let (Expr::Dimension(name), [Expr::Literal(Value::Varchar(value))]) =
                        (&**expr, list.as_slice())
                    {
                        dimensions.push((name.clone(), value.clone()));
                    }
                }
                _ => {}
            }
        }
        // A dimension compared with two values matches nothing; the first one is pushed and the
        // second is still checked in memory, which gives the same (empty) answer.
        dimensions.reverse();
        Scan {
            table: table.clone(),
            start,
            end,
            dimensions: DimensionFilter::new(dimensions),
            measures: self.measures.clone(),
        }
    }
}

fn ordinal_output<'a>(
    outputs: &'a [(String, Expr)],
    ordinal: i64,
    clause: &str,
) -> Result<&'a (String, Expr), TsError> {
    usize::try_from(ordinal)
        .ok()
        .and_then(|ordinal| ordinal.checked_sub(1))
        .and_then(|index| outputs.get(index))
        .ok_or_else(|| {
            invalid(format!(
                "{clause} {ordinal}: there are {} result columns; number them from 1",
                outputs.len()
            ))
        })
}

fn collect_conjuncts<'a>(expr: &'a Expr, into: &mut Vec<&'a Expr>) {
    match expr {
        Expr::Binary(BinaryOp::And, left, right) => {
            collect_conjuncts(left, into);
            collect_conjuncts(right, into);
        }
        other => into.push(other),
    }
}

/// The measures to ask the store for. Every measure when the query shows all columns, or when a
/// record's presence matters on its own (`count(*)`, or no measure named at all).
fn measures_read(
    values: &[Expr],
    filter: Option<&Expr>,
    keys: &[Expr],
    wildcard: bool,
) -> Option<Vec<AttributeName>> {
    let all: Vec<&Expr> = values.iter().chain(filter).chain(keys).collect();
    let counts_rows = all.iter().any(|expr| {
        expr.any(&|node| matches!(node, Expr::Aggregate(AggregateFunction::CountRows, _)))
    });
    let mut measures = BTreeSet::new();
    for expr in &all {
        collect_measures(expr, &mut measures);
    }
    if wildcard || counts_rows || measures.is_empty() {
        return None;
    }
    Some(measures.into_iter().collect())
}

fn collect_measures(expr: &Expr, into: &mut BTreeSet<AttributeName>) {
    if let Expr::Measure(name) = expr {
        into.insert(name.clone());
    }
    for child in expr.children() {
        collect_measures(child, into);
    }
}

/// Rewrites a result expression to read group keys and aggregate results; a column outside
/// both is an error, as in SQL.
fn over_groups(
    expr: Expr,
    keys: &[Expr],
    aggregates: &mut Vec<(AggregateFunction, Vec<Expr>)>,
) -> Result<Expr, TsError> {
    if let Some(index) = keys.iter().position(|key| *key == expr) {
        return Ok(Expr::GroupKey(index));
    }
    match expr {
        Expr::Aggregate(function, args) => {
            let call = (function, args);
            let index = match aggregates.iter().position(|known| *known == call) {
                Some(index) => index,
                None => {
                    aggregates.push(call);
                    aggregates.len() - 1
                }
            };
            Ok(Expr::AggregateResult(index))
        }
        Expr::Time | Expr::Dimension(_) | Expr::Measure(_) => Err(invalid(format!(
            "{expr} must be in GROUP BY or inside an aggregate, like first({expr}) or \
             count({expr})"
        ))),
        other => other.try_map_children(&mut |child| over_groups(child, keys, aggregates)),
    }
}
