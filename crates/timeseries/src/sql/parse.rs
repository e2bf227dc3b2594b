//! From SQL text to [`SqlQuery`]: sqlparser reads the text (after durations like `1m` are turned
//! into `INTERVAL '1m'` token by token), and this module accepts only the read-only subset,
//! refusing everything else with a message that says what is allowed.

use sqlparser::ast;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::{Aggregate, Span, TableRef, TsError};

use super::expr::{AggregateFunction, BinaryOp, Expr, Function, UnaryOp};
use super::value::Value;
use super::{OrderItem, SelectItem, SqlQuery};

/// The longest query text accepted.
pub const MAX_SQL_BYTES: usize = 16 * 1024;

/// What every refusal repeats, so the caller knows the shape that works.
pub(crate) const ALLOWED: &str = "ts_query runs one read-only SELECT over one of your tables: \
     SELECT columns, bin(time, 1m) and aggregates FROM database.table [WHERE …] [GROUP BY …] \
     [ORDER BY …] [LIMIT n]";

/// Schemas that name a database's catalogue rather than a tenant's table.
const CATALOG_SCHEMAS: [&str; 7] = [
    "information_schema",
    "pg_catalog",
    "sys",
    "system",
    "mysql",
    "performance_schema",
    "sqlite_master",
];

const FUNCTIONS: &str = "now, ago, from_iso8601_timestamp, bin, avg, min, max, sum, count, first, \
     last, max_by and min_by";

/// The duration units Timestream writes after a number (`30s`, `1m`, `1h`, `1d`).
const DURATION_UNITS: [&str; 6] = ["us", "ms", "s", "m", "h", "d"];

fn refused(what: impl std::fmt::Display) -> TsError {
    TsError::Refused(format!("{what} is refused: {ALLOWED}"))
}

fn unsupported(what: impl std::fmt::Display) -> TsError {
    TsError::invalid("sql", format!("{what} is not supported: {ALLOWED}"))
}

pub(crate) fn parse(sql: &str) -> Result<SqlQuery, TsError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(TsError::Limit(format!(
            "the query is {} bytes; ts_query takes at most {MAX_SQL_BYTES}: shorten it",
            sql.len()
        )));
    }
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|error| TsError::invalid("sql", format!("cannot read the query: {error}")))?;
    let statements = Parser::new(&dialect)
        .with_tokens_with_locations(durations_as_intervals(tokens))
        .parse_statements()
        .map_err(|error| TsError::invalid("sql", format!("cannot parse the query: {error}")))?;
    let statement = match <[ast::Statement; 1]>::try_from(statements) {
        Ok([statement]) => statement,
        Err(statements) if statements.is_empty() => {
            return Err(TsError::invalid(
                "sql",
                format!("the query is empty: {ALLOWED}"),
            ));
        }
        Err(statements) => {
            return Err(refused(format!(
                "a request of {} statements",
                statements.len()
            )));
        }
    };
    let ast::Statement::Query(query) = statement else {
        let keyword = statement
            .to_string()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_uppercase();
        return Err(TsError::Refused(format!(
            "ts_query is read-only; {keyword} is refused: {ALLOWED}"
        )));
    };
    convert_query(*query)
}

/// Rewrites each number immediately followed by a unit word (`1m`) into `INTERVAL '1m'`.
/// Working on tokens leaves string literals and comments exactly as written.
fn durations_as_intervals(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut rewritten = Vec::with_capacity(tokens.len());
    let mut tokens = tokens.into_iter().peekable();
    while let Some(current) = tokens.next() {
        if let Token::Number(digits, false) = &current.token
            && digits.bytes().all(|byte| byte.is_ascii_digit())
            && let Some(TokenWithSpan {
                token: Token::Word(word),
                ..
            }) = tokens.peek()
            && word.quote_style.is_none()
            && DURATION_UNITS.contains(&word.value.to_ascii_lowercase().as_str())
        {
            let duration = format!("{digits}{}", word.value.to_ascii_lowercase());
            let span = current.span;
            tokens.next();
            for token in [
                Token::make_keyword("INTERVAL"),
                Token::Whitespace(Whitespace::Space),
                Token::SingleQuotedString(duration),
            ] {
                rewritten.push(TokenWithSpan::new(token, span));
            }
            continue;
        }
        rewritten.push(current);
    }
    rewritten
}

fn convert_query(query: ast::Query) -> Result<SqlQuery, TsError> {
    let ast::Query {
        with,
        body,
        order_by,
        limit_clause,
        fetch,
        locks,
        for_clause,
        settings,
        format_clause,
        pipe_operators,
    } = query;
    if with.is_some() {
        return Err(refused("WITH (a common table expression)"));
    }
    if !locks.is_empty() {
        return Err(refused("FOR UPDATE / FOR SHARE"));
    }
    for (present, what) in [
        (fetch.is_some(), "FETCH"),
        (for_clause.is_some(), "FOR XML/JSON"),
        (settings.is_some(), "SETTINGS"),
        (format_clause.is_some(), "FORMAT"),
        (!pipe_operators.is_empty(), "a pipe operator"),
    ] {
        if present {
            return Err(unsupported(what));
        }
    }
    let select = match *body {
        ast::SetExpr::Select(select) => select,
        ast::SetExpr::SetOperation { op, .. } => {
            return Err(refused(format!("{op} (combining queries)")));
        }
        ast::SetExpr::Query(_) => return Err(refused("a subquery")),
        ast::SetExpr::Values(_) => return Err(refused("VALUES")),
        ast::SetExpr::Table(_) => return Err(refused("TABLE")),
        ast::SetExpr::Insert(_)
        | ast::SetExpr::Update(_)
        | ast::SetExpr::Delete(_)
        | ast::SetExpr::Merge(_) => {
            return Err(TsError::Refused(format!(
                "ts_query is read-only; writing is refused: {ALLOWED}"
            )));
        }
    };
    let mut parsed = convert_select(*select)?;
    if let Some(order_by) = order_by {
        parsed.order_by = convert_order_by(order_by)?;
    }
    parsed.limit = limit_clause.map(convert_limit).transpose()?;
    Ok(parsed)
}

fn convert_select(select: ast::Select) -> Result<SqlQuery, TsError> {
    if select.into.is_some() {
        return Err(refused("SELECT … INTO"));
    }
    if select.distinct.is_some() {
        return Err(unsupported("DISTINCT (use GROUP BY)"));
    }
    if select.having.is_some() {
        return Err(unsupported("HAVING"));
    }
    for (present, what) in [
        (!select.optimizer_hints.is_empty(), "an optimizer hint"),
        (select.top.is_some(), "TOP (use LIMIT)"),
        (select.select_modifiers.is_some(), "a SELECT modifier"),
        (select.exclude.is_some(), "EXCLUDE"),
        (!select.lateral_views.is_empty(), "LATERAL VIEW"),
        (select.prewhere.is_some(), "PREWHERE"),
        (!select.connect_by.is_empty(), "CONNECT BY"),
        (!select.cluster_by.is_empty(), "CLUSTER BY"),
        (!select.distribute_by.is_empty(), "DISTRIBUTE BY"),
        (!select.sort_by.is_empty(), "SORT BY (use ORDER BY)"),
        (!select.named_window.is_empty(), "WINDOW"),
        (select.qualify.is_some(), "QUALIFY"),
        (select.value_table_mode.is_some(), "SELECT AS VALUE/STRUCT"),
        (
            select.flavor != ast::SelectFlavor::Standard,
            "FROM before SELECT",
        ),
    ] {
        if present {
            return Err(unsupported(what));
        }
    }
    let table = convert_from(select.from)?;
    let projection = select
        .projection
        .into_iter()
        .map(convert_select_item)
        .collect::<Result<Vec<_>, _>>()?;
    let filter = select.selection.as_ref().map(convert_expr).transpose()?;
    let group_by = match select.group_by {
        ast::GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
        ast::GroupByExpr::Expressions(expressions, modifiers) => {
            if !modifiers.is_empty() {
                return Err(unsupported("GROUP BY … WITH ROLLUP/CUBE/TOTALS"));
            }
            expressions
                .iter()
                .map(convert_expr)
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    Ok(SqlQuery {
        table,
        projection,
        filter,
        group_by,
        order_by: Vec::new(),
        limit: None,
    })
}

fn convert_from(from: Vec<ast::TableWithJoins>) -> Result<TableRef, TsError> {
    let Ok([from]) = <[ast::TableWithJoins; 1]>::try_from(from) else {
        return Err(TsError::invalid(
            "sql",
            format!("name exactly one table: FROM database.table. {ALLOWED}"),
        ));
    };
    if !from.joins.is_empty() {
        return Err(refused("JOIN"));
    }
    let ast::TableFactor::Table {
        name,
        alias,
        args,
        with_hints,
        version,
        with_ordinality,
        partitions,
        json_path,
        sample,
        index_directives,
        inheritance,
    } = from.relation
    else {
        return Err(refused(format!(
            "FROM {} (only a table name may follow FROM)",
            from.relation
        )));
    };
    if args.is_some() {
        return Err(refused(format!("the table function {name}")));
    }
    for (present, what) in [
        (alias.is_some(), "a table alias"),
        (!with_hints.is_empty(), "a table hint"),
        (version.is_some(), "a table version"),
        (with_ordinality, "WITH ORDINALITY"),
        (!partitions.is_empty(), "PARTITION"),
        (json_path.is_some(), "a JSON path"),
        (sample.is_some(), "TABLESAMPLE"),
        (!index_directives.is_empty(), "an index directive"),
        (inheritance.is_some(), "ONLY / table inheritance"),
    ] {
        if present {
            return Err(unsupported(what));
        }
    }
    let parts = name
        .0
        .iter()
        .map(|part| part.as_ident().map(|ident| ident.value.as_str()))
        .collect::<Option<Vec<&str>>>()
        .ok_or_else(|| refused(format!("FROM {name}")))?;
    if let Some(catalog) = parts.iter().find(|part| {
        CATALOG_SCHEMAS
            .iter()
            .any(|schema| part.eq_ignore_ascii_case(schema))
            || part.to_ascii_lowercase().starts_with("sqlite_")
    }) {
        return Err(refused(format!(
            "reading the system catalogue ({catalog}); list your tables with ts_list_tables and \
             describe one with ts_describe_table. Otherwise"
        )));
    }
    match parts.as_slice() {
        [database, table] => TableRef::parse(database, table)
            .map_err(|error| TsError::invalid("sql", format!("FROM {name}: {}", error.message()))),
        [table] => Err(TsError::invalid(
            "sql",
            format!("FROM {table}: name the table with its database, like FROM transit.{table}"),
        )),
        _ => Err(refused(format!(
            "FROM {name} (a name of {} parts reaches outside your databases; write \
             database.table)",
            parts.len()
        ))),
    }
}

fn convert_select_item(item: ast::SelectItem) -> Result<SelectItem, TsError> {
    match item {
        ast::SelectItem::Wildcard(options) => {
            let plain = options.opt_ilike.is_none()
                && options.opt_exclude.is_none()
                && options.opt_except.is_none()
                && options.opt_replace.is_none()
                && options.opt_rename.is_none()
                && options.opt_alias.is_none();
            if !plain {
                return Err(unsupported(format!("*{options}")));
            }
            Ok(SelectItem::Wildcard)
        }
        ast::SelectItem::QualifiedWildcard(kind, _) => {
            Err(unsupported(format!("{kind} (write * or name the columns)")))
        }
        ast::SelectItem::UnnamedExpr(expr) => {
            let expr = convert_expr(&expr)?;
            Ok(SelectItem::Expr {
                name: expr.to_string(),
                expr,
                aliased: false,
            })
        }
        ast::SelectItem::ExprWithAlias { expr, alias } => Ok(SelectItem::Expr {
            expr: convert_expr(&expr)?,
            name: alias.value,
            aliased: true,
        }),
        ast::SelectItem::ExprWithAliases { aliases, .. } => {
            Err(unsupported(format!("several aliases ({})", aliases.len())))
        }
    }
}

fn convert_order_by(order_by: ast::OrderBy) -> Result<Vec<OrderItem>, TsError> {
    if order_by.interpolate.is_some() {
        return Err(unsupported("INTERPOLATE"));
    }
    let ast::OrderByKind::Expressions(expressions) = order_by.kind else {
        return Err(unsupported("ORDER BY ALL (name the columns)"));
    };
    expressions
        .into_iter()
        .map(|item| {
            if item.with_fill.is_some() {
                return Err(unsupported("WITH FILL"));
            }
            let descending = match item.options.sort {
                None | Some(ast::OrderBySort::Asc) => false,
                Some(ast::OrderBySort::Desc) => true,
                Some(_) => return Err(unsupported("ORDER BY … USING (write ASC or DESC)")),
            };
            Ok(OrderItem {
                expr: convert_expr(&item.expr)?,
                descending,
                nulls_first: item.options.nulls_first,
            })
        })
        .collect()
}

fn convert_limit(limit: ast::LimitClause) -> Result<usize, TsError> {
    let ast::LimitClause::LimitOffset {
        limit: Some(limit),
        offset: None,
        limit_by,
    } = limit
    else {
        return Err(unsupported("OFFSET (narrow the WHERE clause instead)"));
    };
    if !limit_by.is_empty() {
        return Err(unsupported("LIMIT … BY"));
    }
    match convert_expr(&limit)? {
        Expr::Literal(Value::Bigint(count)) if count >= 0 => usize::try_from(count)
            .map_err(|_| TsError::invalid("sql", format!("LIMIT {count} is too large"))),
        other => Err(TsError::invalid(
            "sql",
            format!("LIMIT {other}: write a whole number of rows, like LIMIT 100"),
        )),
    }
}

fn boxed(expr: &ast::Expr) -> Result<Box<Expr>, TsError> {
    convert_expr(expr).map(Box::new)
}

fn convert_expr(expr: &ast::Expr) -> Result<Expr, TsError> {
    Ok(match expr {
        ast::Expr::Identifier(ident) => Expr::Column(ident.value.clone()),
        ast::Expr::CompoundIdentifier(parts) => {
            return Err(TsError::invalid(
                "sql",
                format!(
                    "{expr}: name columns without a qualifier, like {}",
                    parts.last().map_or("speed", |part| part.value.as_str())
                ),
            ));
        }
        ast::Expr::Nested(inner) => convert_expr(inner)?,
        ast::Expr::Value(value) => Expr::Literal(convert_value(&value.value)?),
        ast::Expr::Interval(interval) => {
            Expr::Literal(Value::Duration(convert_interval(interval)?))
        }
        ast::Expr::UnaryOp { op, expr: inner } => match op {
            ast::UnaryOperator::Not => Expr::Unary(UnaryOp::Not, boxed(inner)?),
            ast::UnaryOperator::Minus => match convert_expr(inner)? {
                // A negative number literal stays a literal, so `LIMIT`-like places and
                // comparisons see a number.
                Expr::Literal(Value::Bigint(value)) => Expr::Literal(Value::Bigint(-value)),
                Expr::Literal(Value::Double(value)) => Expr::Literal(Value::Double(-value)),
                other => Expr::Unary(UnaryOp::Negate, Box::new(other)),
            },
            ast::UnaryOperator::Plus => convert_expr(inner)?,
            other => return Err(unsupported(format!("the operator {other}"))),
        },
        ast::Expr::BinaryOp { left, op, right } => {
            let op = match op {
                ast::BinaryOperator::And => BinaryOp::And,
                ast::BinaryOperator::Or => BinaryOp::Or,
                ast::BinaryOperator::Eq => BinaryOp::Eq,
                ast::BinaryOperator::NotEq => BinaryOp::NotEq,
                ast::BinaryOperator::Lt => BinaryOp::Lt,
                ast::BinaryOperator::LtEq => BinaryOp::LtEq,
                ast::BinaryOperator::Gt => BinaryOp::Gt,
                ast::BinaryOperator::GtEq => BinaryOp::GtEq,
                ast::BinaryOperator::Plus => BinaryOp::Plus,
                ast::BinaryOperator::Minus => BinaryOp::Minus,
                ast::BinaryOperator::Multiply => BinaryOp::Multiply,
                ast::BinaryOperator::Divide => BinaryOp::Divide,
                other => return Err(unsupported(format!("the operator {other}"))),
            };
            Expr::Binary(op, boxed(left)?, boxed(right)?)
        }
        ast::Expr::IsNull(inner) => Expr::IsNull {
            expr: boxed(inner)?,
            negated: false,
        },
        ast::Expr::IsNotNull(inner) => Expr::IsNull {
            expr: boxed(inner)?,
            negated: true,
        },
        ast::Expr::Between {
            expr: inner,
            negated,
            low,
            high,
        } => Expr::Between {
            expr: boxed(inner)?,
            low: boxed(low)?,
            high: boxed(high)?,
            negated: *negated,
        },
        ast::Expr::In {
            expr: inner,
            target,
            negated,
            global: false,
        } => match target {
            ast::InTarget::List(list) => Expr::InList {
                expr: boxed(inner)?,
                list: list.iter().map(convert_expr).collect::<Result<_, _>>()?,
                negated: *negated,
            },
            _ => return Err(refused("IN with a subquery, table or UNNEST")),
        },
        ast::Expr::Like {
            negated,
            any: false,
            expr: inner,
            pattern,
            escape_char: None,
        } => Expr::Like {
            expr: boxed(inner)?,
            pattern: boxed(pattern)?,
            negated: *negated,
        },
        ast::Expr::Function(function) => convert_function(function)?,
        ast::Expr::Subquery(_) | ast::Expr::Exists { .. } => {
            return Err(refused("a subquery"));
        }
        ast::Expr::Wildcard(_) => {
            return Err(unsupported("* outside SELECT * and count(*)"));
        }
        other => return Err(unsupported(format!("`{other}`"))),
    })
}

fn convert_value(value: &ast::Value) -> Result<Value, TsError> {
    Ok(match value {
        ast::Value::Number(digits, _) => match digits.parse::<i64>() {
            Ok(integer) => Value::Bigint(integer),
            Err(_) => digits
                .parse::<f64>()
                .ok()
                .filter(|number| number.is_finite())
                .map(Value::Double)
                .ok_or_else(|| {
                    TsError::invalid("sql", format!("{digits} is not a number ts_query can use"))
                })?,
        },
        ast::Value::SingleQuotedString(text) => Value::Varchar(text.clone()),
        ast::Value::Boolean(value) => Value::Boolean(*value),
        ast::Value::Null => Value::Null,
        ast::Value::Placeholder(name) => {
            return Err(TsError::invalid(
                "sql",
                format!("{name} is a parameter placeholder; write the value itself"),
            ));
        }
        other => {
            return Err(TsError::invalid(
                "sql",
                format!("the literal {other} is not supported: write strings in 'single quotes'"),
            ));
        }
    })
}

fn convert_interval(interval: &ast::Interval) -> Result<Span, TsError> {
    let text = match interval.value.as_ref() {
        ast::Expr::Value(value) => match &value.value {
            ast::Value::SingleQuotedString(text) => text.clone(),
            ast::Value::Number(digits, _) => digits.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let unit = match &interval.leading_field {
        None => "",
        Some(ast::DateTimeField::Millisecond | ast::DateTimeField::Milliseconds) => "ms",
        Some(ast::DateTimeField::Second | ast::DateTimeField::Seconds) => "s",
        Some(ast::DateTimeField::Minute | ast::DateTimeField::Minutes) => "m",
        Some(ast::DateTimeField::Hour | ast::DateTimeField::Hours) => "h",
        Some(ast::DateTimeField::Day | ast::DateTimeField::Days) => "d",
        Some(other) => {
            return Err(unsupported(format!(
                "an interval in {other} (use ms, s, m, h or d, like 15m)"
            )));
        }
    };
    let extra = interval.leading_precision.is_some()
        || interval.last_field.is_some()
        || interval.fractional_seconds_precision.is_some();
    if extra {
        return Err(unsupported(format!(
            "`{interval}` (write a duration like 15m)"
        )));
    }
    Span::parse(&format!("{}{unit}", text.trim()))
        .map_err(|error| TsError::invalid("sql", format!("{interval}: {}", error.message())))
}

fn convert_function(function: &ast::Function) -> Result<Expr, TsError> {
    let name = match function.name.0.as_slice() {
        [ast::ObjectNamePart::Identifier(ident)] => ident.value.to_ascii_lowercase(),
        _ => {
            return Err(TsError::Refused(format!(
                "unknown function {}: ts_query supports {FUNCTIONS}. {ALLOWED}",
                function.name
            )));
        }
    };
    if function.over.is_some() {
        return Err(unsupported(format!("{name}(…) OVER (window functions)")));
    }
    if function.filter.is_some()
        || function.null_treatment.is_some()
        || !function.within_group.is_empty()
        || function.uses_odbc_syntax
        || !matches!(function.parameters, ast::FunctionArguments::None)
    {
        return Err(unsupported(format!("`{function}`")));
    }
    let arguments = match &function.args {
        ast::FunctionArguments::None => Vec::new(),
        ast::FunctionArguments::Subquery(_) => return Err(refused("a subquery")),
        ast::FunctionArguments::List(list) => {
            if list.duplicate_treatment.is_some() {
                return Err(unsupported(format!("{name}(DISTINCT …)")));
            }
            if !list.clauses.is_empty() {
                return Err(unsupported(format!("`{function}`")));
            }
            list.args
                .iter()
                .map(|argument| match argument {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(expr)) => {
                        convert_expr(expr).map(Some)
                    }
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => Ok(None),
                    other => Err(unsupported(format!("the argument {other} of {name}"))),
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let wildcard = arguments.iter().any(Option::is_none);
    let (callee, arity) = match name.as_str() {
        "now" => (Callee::Scalar(Function::Now), 0),
        "ago" => (Callee::Scalar(Function::Ago), 1),
        "from_iso8601_timestamp" => (Callee::Scalar(Function::FromIso8601Timestamp), 1),
        "bin" => (Callee::Scalar(Function::Bin), 2),
        "count" if wildcard && arguments.len() == 1 => {
            return Ok(Expr::Aggregate(AggregateFunction::CountRows, Vec::new()));
        }
        "max_by" => (Callee::Aggregate(AggregateFunction::MaxBy), 2),
        "min_by" => (Callee::Aggregate(AggregateFunction::MinBy), 2),
        other => match Aggregate::parse(other) {
            Ok(aggregate) => (Callee::Aggregate(AggregateFunction::Shared(aggregate)), 1),
            Err(_) => {
                return Err(TsError::Refused(format!(
                    "unknown function {name}: ts_query supports {FUNCTIONS}. {ALLOWED}"
                )));
            }
        },
    };
    if wildcard {
        return Err(TsError::invalid(
            "sql",
            format!("{name}(*) is not a function: only count(*) takes *"),
        ));
    }
    if arguments.len() != arity {
        let usage = match name.as_str() {
            "now" => "now()",
            "ago" => "ago(1h)",
            "from_iso8601_timestamp" => "from_iso8601_timestamp('2026-11-26T14:00:00Z')",
            "bin" => "bin(time, 5m)",
            "max_by" => "max_by(speed, time)",
            "min_by" => "min_by(speed, time)",
            _ => "avg(speed)",
        };
        return Err(TsError::invalid(
            "sql",
            format!(
                "{name} takes {arity} argument{}, not {}: write it like {usage}",
                if arity == 1 { "" } else { "s" },
                arguments.len()
            ),
        ));
    }
    let arguments: Vec<Expr> = arguments.into_iter().flatten().collect();
    Ok(match callee {
        Callee::Scalar(function) => Expr::Call(function, arguments),
        Callee::Aggregate(aggregate) => Expr::Aggregate(aggregate, arguments),
    })
}

enum Callee {
    Scalar(Function),
    Aggregate(AggregateFunction),
}
