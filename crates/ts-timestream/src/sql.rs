//! Timestream Query SQL rendered from the validated query model. Identifiers are validated names
//! quoted as `"…"`, values are string literals with `'` doubled, times are integers Membrain
//! renders itself: no caller text reaches the SQL any other way.

use std::fmt::Write as _;

use membrain_timeseries::{Aggregate, AttributeName, Bin, DimensionFilter, MeasureType, Timestamp};

/// The measure name every Membrain record carries: one multi-measure record per series and time.
pub const MEASURE_NAME: &str = "membrain";

/// `"name"`, with any `"` doubled (validated names have none; doubling keeps it true anyway).
pub fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with every `'` doubled.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A time as Timestream SQL: nanoseconds since the epoch, clamped to what Timestream holds.
pub fn time(time: Timestamp) -> String {
    let nanos = i128::from(time.as_micros()) * 1_000;
    let nanos = nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    format!("from_nanoseconds({nanos})")
}

/// One Membrain table inside the Timestream database: where reads go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSql {
    /// `"database"."tenant.db.table"`.
    from: String,
}

/// The WHERE conditions of a read.
#[derive(Debug, Clone, Default)]
pub struct Conditions<'a> {
    pub dimensions: Option<&'a DimensionFilter>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// Only records with at least one of these measures.
    pub any_of: &'a [AttributeName],
}

impl TableSql {
    pub fn new(timestream_database: &str, physical_table: &str) -> Self {
        Self {
            from: format!(
                "{}.{}",
                identifier(timestream_database),
                identifier(physical_table)
            ),
        }
    }

    /// The table's columns: name, type and Timestream role (DIMENSION, MULTI…).
    pub fn describe(&self) -> String {
        format!("DESCRIBE {}", self.from)
    }

    /// Rows and time span: columns `row_count`, `earliest`, `latest`.
    pub fn counts(&self) -> String {
        format!(
            "SELECT count(*) AS \"row_count\", min(time) AS \"earliest\", max(time) AS \"latest\" FROM {}{}",
            self.from,
            where_clause(&Conditions::default())
        )
    }

    /// Distinct series: column `series_count`.
    pub fn series_count(&self, dimensions: &[AttributeName]) -> String {
        format!(
            "SELECT count(*) AS \"series_count\" FROM (SELECT DISTINCT {} FROM {}{})",
            column_list(dimensions),
            self.from,
            where_clause(&Conditions::default())
        )
    }

    /// Each series' latest record (the latest with `measure` when one is named): its dimension
    /// columns, `time`, and the measures as of that record.
    pub fn latest(
        &self,
        dimensions: &[AttributeName],
        filter: &DimensionFilter,
        measures: &[AttributeName],
        only_with: Option<&AttributeName>,
    ) -> String {
        let mut select = prefixed(dimensions);
        select.push_str("max(time) AS \"time\"");
        for measure in measures {
            let column = identifier(measure.as_str());
            let _ = write!(select, ", max_by({column}, time) AS {column}");
        }
        let any_of = only_with.map(std::slice::from_ref).unwrap_or_default();
        format!(
            "SELECT {select} FROM {}{}{}",
            self.from,
            where_clause(&Conditions {
                dimensions: Some(filter),
                any_of,
                ..Conditions::default()
            }),
            group_by(dimensions, None)
        )
    }

    /// Raw records: dimension columns, `time`, the measures; in time order, at most `limit`.
    pub fn records(
        &self,
        dimensions: &[AttributeName],
        measures: &[AttributeName],
        conditions: &Conditions<'_>,
        limit: usize,
    ) -> String {
        let mut select = prefixed(dimensions);
        select.push_str("time");
        for measure in measures {
            let _ = write!(select, ", {}", identifier(measure.as_str()));
        }
        format!(
            "SELECT {select} FROM {}{} ORDER BY time LIMIT {limit}",
            self.from,
            where_clause(conditions)
        )
    }

    /// Aggregates per series and bin (or over the whole range without a bin): dimension columns,
    /// `time` (the bin's start; absent without a bin), each measure's aggregate under its name.
    pub fn buckets(
        &self,
        dimensions: &[AttributeName],
        measures: &[(AttributeName, MeasureType)],
        bin: Option<Bin>,
        aggregate: Aggregate,
        conditions: &Conditions<'_>,
        limit: usize,
    ) -> String {
        let bin_expression = bin.map(|bin| format!("bin(time, {bin})"));
        let mut columns: Vec<String> = dimensions
            .iter()
            .map(|name| identifier(name.as_str()))
            .collect();
        if let Some(expression) = &bin_expression {
            columns.push(format!("{expression} AS \"time\""));
        }
        for (measure, _) in measures {
            let column = identifier(measure.as_str());
            columns.push(format!("{} AS {column}", aggregate_of(aggregate, &column)));
        }
        format!(
            "SELECT {} FROM {}{}{} LIMIT {limit}",
            columns.join(", "),
            self.from,
            where_clause(conditions),
            group_by(dimensions, bin_expression.as_deref())
        )
    }
}

/// Timestream's function for an aggregate. `first` and `last` take the value at the earliest or
/// latest time among the records that have the measure (a record without it has NULL there).
fn aggregate_of(aggregate: Aggregate, column: &str) -> String {
    let time_if_present = format!("CASE WHEN {column} IS NULL THEN NULL ELSE time END");
    match aggregate {
        Aggregate::Avg => format!("avg({column})"),
        Aggregate::Min => format!("min({column})"),
        Aggregate::Max => format!("max({column})"),
        Aggregate::Sum => format!("sum({column})"),
        Aggregate::Count => format!("count({column})"),
        Aggregate::First => format!("min_by({column}, {time_if_present})"),
        Aggregate::Last => format!("max_by({column}, {time_if_present})"),
    }
}

/// `"a", "b", ` (each dimension column followed by a comma), or nothing.
fn prefixed(dimensions: &[AttributeName]) -> String {
    dimensions
        .iter()
        .map(|name| format!("{}, ", identifier(name.as_str())))
        .collect()
}

/// `"a", "b"`; `measure_name` for a table without dimensions (one series).
fn column_list(dimensions: &[AttributeName]) -> String {
    if dimensions.is_empty() {
        return "measure_name".into();
    }
    dimensions
        .iter()
        .map(|name| identifier(name.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn group_by(dimensions: &[AttributeName], bin: Option<&str>) -> String {
    let mut keys: Vec<String> = dimensions
        .iter()
        .map(|name| identifier(name.as_str()))
        .collect();
    keys.extend(bin.map(str::to_owned));
    if keys.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", keys.join(", "))
    }
}

fn where_clause(conditions: &Conditions<'_>) -> String {
    let mut clauses = vec![format!("measure_name = {}", literal(MEASURE_NAME))];
    if let Some(filter) = conditions.dimensions {
        for (name, value) in filter.iter() {
            clauses.push(format!(
                "{} = {}",
                identifier(name.as_str()),
                literal(value)
            ));
        }
    }
    if let Some(start) = conditions.start {
        clauses.push(format!("time >= {}", time(start)));
    }
    if let Some(end) = conditions.end {
        clauses.push(format!("time < {}", time(end)));
    }
    if !conditions.any_of.is_empty() {
        let present: Vec<String> = conditions
            .any_of
            .iter()
            .map(|name| format!("{} IS NOT NULL", identifier(name.as_str())))
            .collect();
        clauses.push(format!("({})", present.join(" OR ")));
    }
    format!(" WHERE {}", clauses.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(raw: &[&str]) -> Vec<AttributeName> {
        raw.iter()
            .map(|name| AttributeName::parse(name).unwrap())
            .collect()
    }

    fn table() -> TableSql {
        TableSql::new("membrain", "alice.transit.bus_position")
    }

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(micros)
    }

    #[test]
    fn values_are_literals_with_quotes_doubled() {
        let filter = DimensionFilter::new([(
            AttributeName::parse("line_id").unwrap(),
            "L3' OR '1'='1".to_owned(),
        )]);
        let sql = table().latest(
            &names(&["bus_id", "line_id"]),
            &filter,
            &names(&["speed"]),
            None,
        );
        assert_eq!(
            sql,
            "SELECT \"bus_id\", \"line_id\", max(time) AS \"time\", max_by(\"speed\", time) AS \"speed\" \
             FROM \"membrain\".\"alice.transit.bus_position\" \
             WHERE measure_name = 'membrain' AND \"line_id\" = 'L3'' OR ''1''=''1' \
             GROUP BY \"bus_id\", \"line_id\""
        );
    }

    #[test]
    fn latest_with_a_measure_takes_the_latest_record_that_has_it() {
        let sql = table().latest(
            &names(&["entity_id"]),
            &DimensionFilter::default(),
            &names(&["co2_level"]),
            names(&["co2_level"]).first(),
        );
        assert!(
            sql.ends_with("WHERE measure_name = 'membrain' AND (\"co2_level\" IS NOT NULL) GROUP BY \"entity_id\""),
            "{sql}"
        );
    }

    #[test]
    fn raw_ranges_and_scans_read_records_in_time_order() {
        let filter =
            DimensionFilter::new([(AttributeName::parse("stop_id").unwrap(), "S1".into())]);
        let measures = names(&["count", "door"]);
        let sql = table().records(
            &names(&["stop_id"]),
            &measures,
            &Conditions {
                dimensions: Some(&filter),
                start: Some(at(1_000_000)),
                end: Some(at(2_500_000)),
                any_of: &measures,
            },
            10_001,
        );
        assert_eq!(
            sql,
            "SELECT \"stop_id\", time, \"count\", \"door\" FROM \"membrain\".\"alice.transit.bus_position\" \
             WHERE measure_name = 'membrain' AND \"stop_id\" = 'S1' \
             AND time >= from_nanoseconds(1000000000) AND time < from_nanoseconds(2500000000) \
             AND (\"count\" IS NOT NULL OR \"door\" IS NOT NULL) ORDER BY time LIMIT 10001"
        );
        let unbounded = table().records(&[], &names(&["x"]), &Conditions::default(), 5);
        assert_eq!(
            unbounded,
            "SELECT time, \"x\" FROM \"membrain\".\"alice.transit.bus_position\" \
             WHERE measure_name = 'membrain' ORDER BY time LIMIT 5"
        );
    }

    #[test]
    fn binned_ranges_group_by_series_and_bin() {
        let measures = [
            (AttributeName::parse("count").unwrap(), MeasureType::Bigint),
            (AttributeName::parse("speed").unwrap(), MeasureType::Double),
        ];
        let conditions = Conditions {
            start: Some(at(0)),
            end: Some(at(180_000_000)),
            ..Conditions::default()
        };
        let binned = table().buckets(
            &names(&["stop_id"]),
            &measures,
            Some(Bin::parse("1m").unwrap()),
            Aggregate::Avg,
            &conditions,
            100,
        );
        assert_eq!(
            binned,
            "SELECT \"stop_id\", bin(time, 1m) AS \"time\", avg(\"count\") AS \"count\", avg(\"speed\") AS \"speed\" \
             FROM \"membrain\".\"alice.transit.bus_position\" \
             WHERE measure_name = 'membrain' AND time >= from_nanoseconds(0) AND time < from_nanoseconds(180000000000) \
             GROUP BY \"stop_id\", bin(time, 1m) LIMIT 100"
        );
        let last = table().buckets(&[], &measures[..1], None, Aggregate::Last, &conditions, 100);
        assert_eq!(
            last,
            "SELECT max_by(\"count\", CASE WHEN \"count\" IS NULL THEN NULL ELSE time END) AS \"count\" \
             FROM \"membrain\".\"alice.transit.bus_position\" \
             WHERE measure_name = 'membrain' AND time >= from_nanoseconds(0) AND time < from_nanoseconds(180000000000) \
             LIMIT 100"
        );
        for (aggregate, expression) in [
            (Aggregate::Min, "min(\"count\")"),
            (Aggregate::Max, "max(\"count\")"),
            (Aggregate::Sum, "sum(\"count\")"),
            (Aggregate::Count, "count(\"count\")"),
            (Aggregate::First, "min_by(\"count\", CASE"),
        ] {
            let sql = table().buckets(&[], &measures[..1], None, aggregate, &conditions, 1);
            assert!(
                sql.starts_with(&format!("SELECT {expression}")),
                "{aggregate}: {sql}"
            );
        }
    }

    #[test]
    fn description_queries() {
        assert_eq!(
            table().describe(),
            "DESCRIBE \"membrain\".\"alice.transit.bus_position\""
        );
        assert_eq!(
            table().series_count(&names(&["a", "b"])),
            "SELECT count(*) AS \"series_count\" FROM (SELECT DISTINCT \"a\", \"b\" FROM \
             \"membrain\".\"alice.transit.bus_position\" WHERE measure_name = 'membrain')"
        );
        assert!(
            table()
                .series_count(&[])
                .contains("SELECT DISTINCT measure_name FROM")
        );
        assert!(table().counts().starts_with(
            "SELECT count(*) AS \"row_count\", min(time) AS \"earliest\", max(time) AS \"latest\" FROM"
        ));
    }

    #[test]
    fn identifiers_double_their_quotes() {
        assert_eq!(identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(
            time(Timestamp::from_micros(i64::MAX)),
            format!("from_nanoseconds({})", i64::MAX)
        );
    }
}
