//! Fuzz targets on stable Rust (proptest): what callers send — `ts_query` text and JSON records —
//! never panics and never ends in an internal error. Each runs a small number of cases by
//! default; `PROPTEST_CASES=100000 cargo test -p membrain-timeseries fuzz_` runs more, and a
//! failure prints the smallest input proptest could shrink it to.

use membrain_timeseries::sql::{self, QueryResult};
use membrain_timeseries::{
    AttributeName, DatabaseName, Dimensions, MeasureType, MeasureValue, Point, ReadLimits,
    SeriesPoints, Span, TableMeta, TableName, TableRef, TableSchema, Timestamp, TsError,
    WriteLimits, parse_records,
};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

/// Cases per target: `PROPTEST_CASES` when set, else `default` (kept small for debug builds).
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn name(raw: &str) -> AttributeName {
    AttributeName::parse(raw).expect("a valid name")
}

fn origin() -> Timestamp {
    Timestamp::parse("2026-11-26T14:00:00Z").expect("a time")
}

fn schema() -> TableSchema {
    TableSchema {
        dimensions: [name("bus_id"), name("line_id")].into(),
        measures: [
            (name("passengers"), MeasureType::Bigint),
            (name("speed"), MeasureType::Double),
            (name("status"), MeasureType::Varchar),
            (name("door"), MeasureType::Boolean),
            (name("seen"), MeasureType::Timestamp),
        ]
        .into(),
    }
}

/// A small table: three series, some records lacking measures, extreme values included.
fn data() -> Vec<SeriesPoints> {
    let point = |seconds: i64, measures: Vec<(&str, MeasureValue)>| {
        let mut measures: Vec<(AttributeName, MeasureValue)> = measures
            .into_iter()
            .map(|(key, value)| (name(key), value))
            .collect();
        measures.sort_by(|a, b| a.0.cmp(&b.0));
        Point {
            time: origin().plus_micros(seconds * 1_000_000),
            measures,
        }
    };
    let series = |bus: &str, line: &str, points: Vec<Point>| SeriesPoints {
        dimensions: Dimensions::new([
            (name("bus_id"), bus.to_owned()),
            (name("line_id"), line.to_owned()),
        ]),
        points,
    };
    use MeasureValue::{Bigint, Boolean, Double, Timestamp as Time, Varchar};
    vec![
        series(
            "B1",
            "L3",
            vec![
                point(
                    0,
                    vec![("speed", Double(10.0)), ("passengers", Bigint(i64::MAX))],
                ),
                point(30, vec![("speed", Double(-0.0)), ("door", Boolean(true))]),
                point(
                    60,
                    vec![
                        ("status", Varchar("1m late".into())),
                        ("seen", Time(origin())),
                    ],
                ),
            ],
        ),
        series(
            "B2",
            "L3",
            vec![
                point(0, vec![("passengers", Bigint(i64::MIN))]),
                point(70, vec![("speed", Double(f64::MAX))]),
            ],
        ),
        series(
            "B'3",
            "",
            vec![point(
                -86_400,
                vec![("speed", Double(1e-300)), ("status", Varchar("%_'".into()))],
            )],
        ),
    ]
}

/// What may come out of a query: an answer, or an error that is the caller's to fix.
fn acceptable(sql: &str, result: Result<QueryResult, TsError>) -> Result<(), TestCaseError> {
    match result {
        Ok(answer) => {
            prop_assert!(
                answer
                    .rows
                    .iter()
                    .all(|row| row.len() == answer.columns.len())
            );
            Ok(())
        }
        Err(TsError::Internal(message)) => Err(TestCaseError::fail(format!(
            "{sql}: internal error {message}"
        ))),
        Err(_) => Ok(()),
    }
}

/// Parses, plans and runs `sql` over [`data`], as the store would answer the scan.
fn run(sql: &str) -> Result<(), TestCaseError> {
    let now = origin().plus_micros(120_000_000);
    let query = match sql::parse(sql) {
        Ok(query) => query,
        Err(error) => return acceptable(sql, Err(error)),
    };
    let scan = match query.scan(&schema(), now) {
        Ok(scan) => scan,
        Err(error) => return acceptable(sql, Err(error)),
    };
    let scanned: Vec<SeriesPoints> = data()
        .into_iter()
        .filter(|entry| entry.dimensions.matches(&scan.dimensions))
        .map(|mut entry| {
            entry.points.retain(|point| scan.contains(point.time));
            entry
        })
        .collect();
    for limits in [
        ReadLimits::default(),
        ReadLimits {
            max_query_rows: 1,
            ..ReadLimits::default()
        },
    ] {
        acceptable(sql, query.execute(&schema(), scanned.clone(), now, &limits))?;
    }
    Ok(())
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "LIMIT",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "IS NULL",
    "IS NOT NULL",
    "LIKE",
    "NOT LIKE",
    "ASC",
    "DESC",
    "NULLS FIRST",
    "NULLS LAST",
    "AS",
    "DISTINCT",
    "JOIN",
    "UNION",
    "HAVING",
    "OFFSET",
    "INSERT",
    "DELETE",
    "WITH",
    "CASE",
    "WHEN",
    "THEN",
    "END",
    "CAST",
    "INTERVAL",
    ";",
    "--",
    "/*",
    "*/",
];

const IDENTIFIERS: &[&str] = &[
    "time",
    "bus_id",
    "line_id",
    "speed",
    "passengers",
    "status",
    "door",
    "seen",
    "SPEED",
    "\"speed\"",
    "\"bus_id\"",
    "nope",
    "transit.bus_position",
    "transit.other",
    "x.y.z",
    "information_schema.tables",
    "\"odd-db\".\"t\"",
    "t",
    "*",
];

const LITERALS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3.5",
    "-0.0",
    "1e308",
    "-1e308",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "'B1'",
    "''",
    "'%'",
    "'_'",
    "'x''y'",
    "'%a%a%a%b'",
    "'1m late'",
    "1s",
    "5m",
    "1h",
    "1d",
    "0s",
    "1us",
    "1ms",
    "106751991167d",
    "99999999999999999999d",
    "NULL",
    "true",
    "false",
    "'2026-11-26T14:00:00Z'",
    "'not a time'",
    "now()",
    "ago(1h)",
    "ago(0s)",
    "ago(99999999d)",
    "from_iso8601_timestamp('2026-11-26T14:00:00Z')",
    "from_iso8601_timestamp('x')",
    "now() - 1h",
    "now() + 99999999d",
];

const OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "%", "=", "<>", "!=", "<", "<=", ">", ">=", "||", ",", "(", ")",
];

const FUNCTIONS: &[&str] = &[
    "avg",
    "min",
    "max",
    "sum",
    "count",
    "first",
    "last",
    "max_by",
    "min_by",
    "bin",
    "ago",
    "now",
    "from_iso8601_timestamp",
    "lower",
    "sleep",
];

fn one_of(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(words).prop_map(str::to_owned)
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![one_of(IDENTIFIERS), one_of(LITERALS)]
}

/// Expressions of the subset's shapes (and some it refuses), nested a few levels.
fn expression() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 32, 3, |inner| {
        prop_oneof![
            (inner.clone(), one_of(OPERATORS), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (
                one_of(FUNCTIONS),
                proptest::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(function, args)| format!("{function}({})", args.join(", "))),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("NOT {a}")),
            inner.clone().prop_map(|a| format!("{a} IS NULL")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("{a} BETWEEN {b} AND {c}")),
            (
                inner.clone(),
                proptest::collection::vec(inner.clone(), 1..3)
            )
                .prop_map(|(a, list)| format!("{a} IN ({})", list.join(", "))),
            (inner.clone(), one_of(LITERALS)).prop_map(|(a, p)| format!("{a} LIKE {p}")),
            Just("count(*)".to_owned()),
            inner.prop_map(|a| format!("bin(time, {a})")),
        ]
    })
}

/// A `SELECT` put together from the grammar's clauses.
fn statement() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec((expression(), proptest::option::of("[a-z]{1,3}")), 1..4),
        prop_oneof![
            4 => Just("transit.bus_position".to_owned()),
            1 => one_of(IDENTIFIERS),
        ],
        proptest::option::of(expression()),
        proptest::collection::vec(expression(), 0..3),
        proptest::collection::vec(
            (
                expression(),
                one_of(&["", " ASC", " DESC NULLS FIRST", " DESC"]),
            ),
            0..3,
        ),
        proptest::option::of(prop_oneof![
            Just("0".to_owned()),
            Just("1".to_owned()),
            Just("-1".to_owned()),
            Just("99999999999999999999".to_owned()),
            one_of(LITERALS),
        ]),
    )
        .prop_map(|(items, table, filter, group, order, limit)| {
            let items: Vec<String> = items
                .into_iter()
                .map(|(expr, alias)| match alias {
                    Some(alias) => format!("{expr} AS {alias}"),
                    None => expr,
                })
                .collect();
            let mut sql = format!("SELECT {} FROM {table}", items.join(", "));
            if let Some(filter) = filter {
                sql.push_str(&format!(" WHERE {filter}"));
            }
            if !group.is_empty() {
                sql.push_str(&format!(" GROUP BY {}", group.join(", ")));
            }
            if !order.is_empty() {
                let order: Vec<String> =
                    order.into_iter().map(|(e, d)| format!("{e}{d}")).collect();
                sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
            }
            if let Some(limit) = limit {
                sql.push_str(&format!(" LIMIT {limit}"));
            }
            sql
        })
}

const NUMERIC: &[&str] = &[
    "speed",
    "passengers",
    "speed * 3.6",
    "passengers + 1",
    "-speed",
];
const ANY_COLUMN: &[&str] = &[
    "time",
    "bus_id",
    "line_id",
    "speed",
    "passengers",
    "status",
    "door",
    "seen",
];

/// A condition the binder accepts, mostly: comparisons of columns with fitting literals.
fn condition() -> impl Strategy<Value = String> {
    let simple = prop_oneof![
        (
            one_of(&["time >", "time >=", "time <", "time <=", "time ="]),
            one_of(&[
                "ago(1h)",
                "ago(1d)",
                "now()",
                "now() - 5m",
                "'2026-11-26T14:00:00Z'",
                "'2026-11-26T14:01:00Z'",
                "from_iso8601_timestamp('2026-11-26T13:00:00Z')",
                "'2026-13-45T99:00:00Z'",
            ])
        )
            .prop_map(|(left, right)| format!("{left} {right}")),
        (
            one_of(&["bus_id", "line_id", "status"]),
            one_of(&["=", "<>", "<", ">="]),
            one_of(&["'B1'", "'L3'", "''", "'B''3'", "'1m late'"])
        )
            .prop_map(|(column, op, value)| format!("{column} {op} {value}")),
        (
            one_of(NUMERIC),
            one_of(&["=", "<>", "!=", "<", "<=", ">", ">="]),
            one_of(&[
                "0",
                "10",
                "-1",
                "2.5",
                "1e308",
                "9223372036854775807",
                "NULL"
            ])
        )
            .prop_map(|(column, op, value)| format!("{column} {op} {value}")),
        (one_of(ANY_COLUMN), one_of(&["IS NULL", "IS NOT NULL"]))
            .prop_map(|(column, test)| format!("{column} {test}")),
        (
            one_of(&["bus_id", "line_id", "status"]),
            one_of(&["LIKE", "NOT LIKE"]),
            one_of(&[
                "'B%'",
                "'%'",
                "'_'",
                "'%late'",
                "'%a%a%a%b'",
                "''",
                "'%%'",
                "'B_'"
            ])
        )
            .prop_map(|(column, op, pattern)| format!("{column} {op} {pattern}")),
        (
            one_of(&["bus_id", "line_id"]),
            one_of(&["IN ('B1')", "IN ('B1', 'B2')", "NOT IN ('L3')"])
        )
            .prop_map(|(column, list)| format!("{column} {list}")),
        (
            one_of(NUMERIC),
            one_of(&[
                "BETWEEN 0 AND 50",
                "NOT BETWEEN 1 AND 2",
                "BETWEEN 50 AND 0"
            ])
        )
            .prop_map(|(column, range)| format!("{column} {range}")),
        Just("time BETWEEN '2026-11-26T14:00:00Z' AND '2026-11-26T14:01:00Z'".to_owned()),
        Just("door".to_owned()),
        Just("NOT door".to_owned()),
    ];
    simple.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), one_of(&["AND", "OR"]), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("NOT ({a})")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

/// A query the subset is meant to answer: plain or grouped, with the clauses in their places.
fn well_formed() -> impl Strategy<Value = String> {
    let plain_item = prop_oneof![
        one_of(ANY_COLUMN),
        one_of(NUMERIC),
        Just("*".to_owned()),
        Just("time - 1h".to_owned()),
        Just("speed / 0".to_owned()),
        Just("passengers * 9223372036854775807".to_owned()),
    ];
    let aggregate = prop_oneof![
        (one_of(&["avg", "min", "max", "sum"]), one_of(NUMERIC))
            .prop_map(|(f, c)| format!("{f}({c})")),
        (one_of(&["count", "first", "last"]), one_of(ANY_COLUMN))
            .prop_map(|(f, c)| format!("{f}({c})")),
        Just("count(*)".to_owned()),
        (
            one_of(&["max_by", "min_by"]),
            one_of(ANY_COLUMN),
            one_of(&["time", "speed", "status"])
        )
            .prop_map(|(f, v, r)| format!("{f}({v}, {r})")),
        Just("sum(passengers)".to_owned()),
    ];
    let key = || {
        one_of(&[
            "bus_id",
            "line_id",
            "bin(time, 1m)",
            "bin(time, 1h)",
            "status",
            "door",
        ])
    };
    let plain = (
        proptest::collection::vec(plain_item, 1..4),
        proptest::option::of(condition()),
        proptest::collection::vec(
            (
                one_of(&["1", "2", "time", "speed", "bus_id", "speed * 2", "5"]),
                one_of(&["", " ASC", " DESC", " DESC NULLS FIRST", " NULLS LAST"]),
            ),
            0..3,
        ),
        proptest::option::of(one_of(&["0", "1", "3", "1000000"])),
    )
        .prop_map(|(items, filter, order, limit)| clauses(items, filter, Vec::new(), order, limit));
    let grouped = (
        proptest::collection::vec(key(), 0..3),
        proptest::collection::vec(aggregate, 1..3),
        proptest::option::of(condition()),
        proptest::collection::vec((one_of(&["1", "2", "3"]), one_of(&["", " DESC"])), 0..2),
        proptest::option::of(one_of(&["1", "10"])),
    )
        .prop_map(|(keys, aggregates, filter, order, limit)| {
            let items = keys.iter().cloned().chain(aggregates).collect();
            clauses(items, filter, keys, order, limit)
        });
    prop_oneof![plain, grouped]
}

fn clauses(
    items: Vec<String>,
    filter: Option<String>,
    group: Vec<String>,
    order: Vec<(String, String)>,
    limit: Option<String>,
) -> String {
    let mut sql = format!("SELECT {} FROM transit.bus_position", items.join(", "));
    if let Some(filter) = filter {
        sql.push_str(&format!(" WHERE {filter}"));
    }
    if !group.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", group.join(", ")));
    }
    if !order.is_empty() {
        let order: Vec<String> = order.into_iter().map(|(e, d)| format!("{e}{d}")).collect();
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    sql
}

/// Tokens of the subset in any order.
fn token_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            one_of(KEYWORDS),
            one_of(IDENTIFIERS),
            one_of(LITERALS),
            one_of(OPERATORS),
            one_of(FUNCTIONS),
        ],
        0..24,
    )
    .prop_map(|tokens| tokens.join(" "))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn fuzz_ts_query_parse_and_plan(
        sql in prop_oneof![
            4 => well_formed(),
            2 => statement(),
            2 => token_soup(),
            1 => any::<String>(),
            1 => "[ -~]{0,80}",
        ]
    ) {
        run(&sql)?;
    }
}

/// Any JSON value, nested a few levels, with the awkward numbers and strings records meet.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>()
            .prop_map(|value| serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number)),
        Just(json!(1e308)),
        Just(json!(-0.0)),
        any::<String>().prop_map(Json::from),
        "[a-z_]{0,12}".prop_map(Json::from),
        Just(json!("2026-11-26T14:00:00Z")),
        Just(json!("2026-11-26T14:00:00.123456789+14:00")),
        Just(json!("9999-12-31T23:59:59Z")),
        Just(json!("0000-01-01T00:00:00Z")),
        Just(json!("now")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::from),
            proptest::collection::btree_map("[a-z_]{0,8}|time|measures|dimensions", inner, 0..4)
                .prop_map(|map| Json::Object(map.into_iter().collect())),
        ]
    })
}

/// Mostly record-shaped objects, with any JSON in each place.
fn record() -> impl Strategy<Value = Json> {
    let attributes = || {
        proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,6}|time|", json_value(), 0..4)
            .prop_map(|map| Json::Object(map.into_iter().collect()))
    };
    prop_oneof![
        4 => (json_value(), attributes(), attributes()).prop_map(|(time, dimensions, measures)| {
            json!({"time": time, "dimensions": dimensions, "measures": measures})
        }),
        1 => json_value(),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn fuzz_record_parsing(records in proptest::collection::vec(record(), 0..8)) {
        let limits = WriteLimits::default();
        let (items, rejected) = parse_records(&records, &limits);
        let mut indices: Vec<usize> = items
            .iter()
            .map(|item| item.index)
            .chain(rejected.iter().map(|rejection| rejection.record_index))
            .collect();
        indices.sort_unstable();
        prop_assert_eq!(indices, (0..records.len()).collect::<Vec<_>>());
        for rejection in &rejected {
            prop_assert!(!rejection.reason.is_empty());
        }
        let table = TableRef::new(
            DatabaseName::parse("fuzz").expect("name"),
            TableName::parse("records").expect("name"),
        );
        let mut meta = TableMeta::new(table, Span::parse("365d").expect("span"), origin());
        let count = items.len();
        let (admitted, refused) = meta.admit(items, origin(), &limits);
        prop_assert_eq!(admitted.len() + refused.len(), count);
        for item in &admitted {
            prop_assert!(!item.record.measures.is_empty());
            for (measure, value) in &item.record.measures {
                prop_assert_eq!(meta.schema.measures.get(measure), Some(&value.kind()));
            }
        }
    }
}
