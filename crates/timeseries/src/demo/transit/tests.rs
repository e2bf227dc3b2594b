use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::{Span, TableMeta, WriteLimits, parse_record};

/// A Thursday, 06:30 to 09:30 UTC: quiet, then the morning rush.
fn at(raw: &str) -> Timestamp {
    Timestamp::parse(raw).unwrap()
}

fn all(demo: &TransitDemo, table: TransitTable, start: &str, end: &str) -> Vec<Record> {
    demo.records_of(table, at(start), at(end)).collect()
}

fn text<'a>(record: &'a Record, name: &str) -> &'a str {
    match record.measure(name) {
        Some(MeasureValue::Varchar(text)) => text,
        other => panic!("{name} is {other:?} in {record}"),
    }
}

fn double(record: &Record, name: &str) -> f64 {
    match record.measure(name) {
        Some(MeasureValue::Double(value)) => *value,
        other => panic!("{name} is {other:?} in {record}"),
    }
}

fn bigint(record: &Record, name: &str) -> i64 {
    match record.measure(name) {
        Some(MeasureValue::Bigint(value)) => *value,
        other => panic!("{name} is {other:?} in {record}"),
    }
}

#[test]
fn the_same_seed_gives_the_same_records_and_another_seed_others() {
    for table in TransitTable::ALL {
        let first = all(
            &TransitDemo::new(7),
            table,
            "2026-11-26T08:00:00Z",
            "2026-11-26T08:10:00Z",
        );
        let second = all(
            &TransitDemo::new(7),
            table,
            "2026-11-26T08:00:00Z",
            "2026-11-26T08:10:00Z",
        );
        let other = all(
            &TransitDemo::new(8),
            table,
            "2026-11-26T08:00:00Z",
            "2026-11-26T08:10:00Z",
        );
        assert_eq!(first, second, "{}", table.name());
        assert_ne!(first, other, "{}", table.name());
    }
}

#[test]
fn a_window_is_its_parts_wherever_it_is_cut() {
    let demo = TransitDemo::new(42);
    for table in TransitTable::ALL {
        let whole = all(&demo, table, "2026-11-26T07:58:05Z", "2026-11-26T08:31:00Z");
        let mut parts = all(&demo, table, "2026-11-26T07:58:05Z", "2026-11-26T08:12:37Z");
        parts.extend(all(
            &demo,
            table,
            "2026-11-26T08:12:37Z",
            "2026-11-26T08:31:00Z",
        ));
        assert_eq!(whole, parts, "{}", table.name());
        // A generator started later (a restarted live feed) agrees with the backfill.
        let late = all(&demo, table, "2026-11-26T08:30:00Z", "2026-11-26T08:31:00Z");
        assert_eq!(&whole[whole.len() - late.len()..], late, "{}", table.name());
    }
}

#[test]
fn counts_are_exact_and_announced() {
    let demo = TransitDemo::new(1);
    let (start, end) = ("2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z");
    for (table, expected) in [
        (TransitTable::BusPosition, 24 * 360),
        (TransitTable::PeopleCount, 40 * 60),
        (TransitTable::SensorData, 64 * 60),
    ] {
        let table_ref = TableRef::parse("transit", table.name()).unwrap();
        assert_eq!(
            demo.record_count(&table_ref, at(start), at(end)).unwrap(),
            expected
        );
        let records = demo.records(&table_ref, at(start), at(end)).unwrap();
        assert_eq!(
            records.size_hint(),
            (expected as usize, Some(expected as usize))
        );
        assert_eq!(records.count() as u64, expected, "{}", table.name());
    }
    // Unaligned windows count the ticks inside them, and an empty window nothing.
    let bus = &demo.tables()[0];
    let count = |start, end| demo.record_count(bus, at(start), at(end)).unwrap();
    assert_eq!(
        count("2026-11-26T10:00:01Z", "2026-11-26T10:00:21Z"),
        2 * 24
    );
    assert_eq!(count("2026-11-26T10:00:01Z", "2026-11-26T10:00:20Z"), 24);
    assert_eq!(count("2026-11-26T10:00:00Z", "2026-11-26T10:00:00Z"), 0);
    assert_eq!(count("2026-11-26T10:00:00Z", "2026-11-26T09:00:00Z"), 0);
    let foreign = TableRef::parse("transit", "weather").unwrap();
    let error = demo.record_count(
        &foreign,
        at("2026-11-26T10:00:00Z"),
        at("2026-11-26T11:00:00Z"),
    );
    assert!(
        error
            .unwrap_err()
            .to_string()
            .contains("transit.bus_position")
    );
}

#[test]
fn records_read_back_through_the_write_api_and_are_admitted() {
    let demo = TransitDemo::new(3);
    let limits = WriteLimits::default();
    let end = at("2026-11-26T08:05:00Z");
    for table in demo.tables() {
        let records: Vec<Record> = demo
            .records(&table, at("2026-11-26T08:00:00Z"), end)
            .unwrap()
            .collect();
        let items: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(index, record)| {
                let parsed = parse_record(&record.to_json(), &limits).unwrap();
                assert_eq!(&parsed, record);
                crate::BatchItem {
                    index,
                    record: parsed,
                }
            })
            .collect();
        let mut meta = TableMeta::new(table.clone(), Span::from_secs(86_400), end);
        let (admitted, rejected) = meta.admit(items, end, &limits);
        assert!(rejected.is_empty(), "{table}: {rejected:?}");
        assert_eq!(admitted.len(), records.len());
    }
}

/// Metres from a point to the segment between two others (flat-earth, as the city is small).
fn metres_to_segment(point: (f64, f64), from: (f64, f64), to: (f64, f64)) -> f64 {
    let scale = (111_320.0, 111_320.0 * point.0.to_radians().cos());
    let xy = |p: (f64, f64)| (p.0 * scale.0, p.1 * scale.1);
    let (p, a, b) = (xy(point), xy(from), xy(to));
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    (p.0 - a.0 - t * dx).hypot(p.1 - a.1 - t * dy)
}

#[test]
fn buses_stay_on_their_routes_and_stop_with_doors_open() {
    let demo = TransitDemo::new(11);
    let (start, end) = ("2026-11-26T06:30:00Z", "2026-11-26T09:30:00Z");
    let positions = all(&demo, TransitTable::BusPosition, start, end);
    let stops: HashMap<&str, &Stop> = demo
        .stops()
        .iter()
        .map(|stop| (stop.id.as_str(), stop))
        .collect();
    let lines: HashMap<&str, &Line> = demo
        .lines()
        .iter()
        .map(|line| (line.id.as_str(), line))
        .collect();
    let mut by_bus_time = HashMap::new();
    let (mut moving, mut stopped, mut late) = (0, 0, 0);
    for record in &positions {
        let line = lines[record.dimensions.get("line_id").unwrap()];
        let next = text(record, "next_stop_id");
        assert!(line.stop_ids.iter().any(|stop| stop == next), "{record}");
        let point = (double(record, "latitude"), double(record, "longitude"));
        let route: Vec<(f64, f64)> = line
            .stop_ids
            .iter()
            .map(|id| (stops[id.as_str()].latitude, stops[id.as_str()].longitude))
            .collect();
        let off_route = route
            .windows(2)
            .map(|pair| metres_to_segment(point, pair[0], pair[1]))
            .fold(f64::INFINITY, f64::min);
        assert!(off_route < 10.0, "{off_route} m off the route: {record}");
        let speed = double(record, "speed");
        assert!((0.0..70.0).contains(&speed), "{record}");
        let passengers = bigint(record, "passenger_count");
        assert!(
            (0..=i64::from(BUS_CAPACITY)).contains(&passengers),
            "{record}"
        );
        let heading = double(record, "heading");
        assert!((0.0..360.0).contains(&heading), "{record}");
        if speed > 0.0 {
            moving += 1;
        } else {
            stopped += 1;
        }
        if bigint(record, "delay_seconds") > 60 {
            late += 1;
        }
        by_bus_time.insert(
            (
                record.dimensions.get("bus_id").unwrap().to_owned(),
                record.time,
            ),
            speed,
        );
    }
    assert!(
        moving > positions.len() / 3 && stopped > positions.len() / 10,
        "{moving} moving, {stopped} stopped"
    );
    assert!(late > 0, "the rush makes some buses late");
    let sensors = all(&demo, TransitTable::SensorData, start, end);
    let mut doors_open = 0;
    for record in sensors
        .iter()
        .filter(|record| record.dimensions.get("entity_type") == Some("bus"))
    {
        let bus = record.dimensions.get("entity_id").unwrap().to_owned();
        let speed = by_bus_time[&(bus, record.time)];
        match text(record, "door_status") {
            "open" => {
                doors_open += 1;
                assert_eq!(speed, 0.0, "doors open while moving: {record}");
            }
            "closed" => {}
            other => panic!("door_status {other}"),
        }
    }
    assert!(doors_open > 0);
}

#[test]
fn a_bus_moves_along_its_line_without_jumps() {
    let demo = TransitDemo::new(5);
    let positions = all(
        &demo,
        TransitTable::BusPosition,
        "2026-11-26T12:00:00Z",
        "2026-11-26T14:00:00Z",
    );
    let mut last: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for record in positions {
        let bus = record.dimensions.get("bus_id").unwrap().to_owned();
        let point = (double(&record, "latitude"), double(&record, "longitude"));
        if let Some(previous) = last.insert(bus, point) {
            let metres = super::city::distance_km(previous, point) * 1_000.0;
            // 10 s at 55 km/h, faster than the night's cruising speed at the top of its spread.
            assert!(metres < 155.0, "{metres} m in 10 s: {record}");
        }
    }
}

#[test]
fn people_wait_between_buses_and_board_them() {
    let demo = TransitDemo::new(9);
    let counts = all(
        &demo,
        TransitTable::PeopleCount,
        "2026-11-26T06:30:00Z",
        "2026-11-26T09:30:00Z",
    );
    let mut by_stop: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for record in &counts {
        let count = bigint(record, "count");
        assert!(count >= 0);
        by_stop
            .entry(record.dimensions.get("stop_id").unwrap().to_owned())
            .or_default()
            .push(count);
    }
    assert_eq!(by_stop.len(), 40);
    for (stop, series) in &by_stop {
        let rises = series.windows(2).filter(|pair| pair[1] > pair[0]).count();
        let drops = series.windows(2).filter(|pair| pair[1] < pair[0]).count();
        assert!(rises > 5 && drops > 3, "{stop}: {series:?}");
    }
    // The rush brings more people than the early morning.
    let total = |from: &str, to: &str| -> i64 {
        counts
            .iter()
            .filter(|record| record.time >= at(from) && record.time < at(to))
            .map(|record| bigint(record, "count"))
            .sum()
    };
    assert!(
        total("2026-11-26T08:00:00Z", "2026-11-26T09:00:00Z")
            > 2 * total("2026-11-26T06:30:00Z", "2026-11-26T07:00:00Z")
    );
    // Buses carry them.
    let positions = all(
        &demo,
        TransitTable::BusPosition,
        "2026-11-26T08:00:00Z",
        "2026-11-26T09:00:00Z",
    );
    let busiest = positions
        .iter()
        .map(|record| bigint(record, "passenger_count"))
        .max()
        .unwrap();
    assert!(busiest > 20, "{busiest}");
}

#[test]
fn co2_follows_passengers_and_humidity_moves_against_temperature() {
    let demo = TransitDemo::new(13);
    let (start, end) = ("2026-11-26T07:00:00Z", "2026-11-26T10:00:00Z");
    let positions = all(&demo, TransitTable::BusPosition, start, end);
    let passengers: HashMap<(String, Timestamp), i64> = positions
        .iter()
        .map(|record| {
            (
                (
                    record.dimensions.get("bus_id").unwrap().to_owned(),
                    record.time,
                ),
                bigint(record, "passenger_count"),
            )
        })
        .collect();
    let sensors = all(&demo, TransitTable::SensorData, start, end);
    let pairs: Vec<(f64, f64)> = sensors
        .iter()
        .filter(|record| record.dimensions.get("entity_type") == Some("bus"))
        .map(|record| {
            assert!(record.dimensions.get("line_id").is_some());
            let key = (
                record.dimensions.get("entity_id").unwrap().to_owned(),
                record.time,
            );
            (passengers[&key] as f64, bigint(record, "co2_level") as f64)
        })
        .collect();
    assert!(correlation(&pairs) > 0.9, "{}", correlation(&pairs));
    for record in sensors
        .iter()
        .filter(|record| record.dimensions.get("entity_type") == Some("stop"))
    {
        assert!(
            record.dimensions.get("line_id").is_none() && record.measure("door_status").is_none()
        );
    }
    // Over a day, at one stop: warmest in the afternoon, humidity against temperature.
    let day = all(
        &demo,
        TransitTable::SensorData,
        "2026-11-26T00:00:00Z",
        "2026-11-27T00:00:00Z",
    );
    let stop: Vec<(f64, f64)> = day
        .iter()
        .filter(|record| record.dimensions.get("entity_id") == Some("S001"))
        .map(|record| (double(record, "temperature"), double(record, "humidity")))
        .collect();
    assert_eq!(stop.len(), 1_440);
    assert!(
        stop[15 * 60].0 > stop[3 * 60].0 + 5.0,
        "{:?} {:?}",
        stop[15 * 60],
        stop[3 * 60]
    );
    assert!(correlation(&stop) < -0.7, "{}", correlation(&stop));
}

fn correlation(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    let (mean_x, mean_y) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let covariance: f64 = pairs.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let spread = |f: fn(&(f64, f64)) -> f64, mean: f64| {
        pairs
            .iter()
            .map(|p| (f(p) - mean).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    covariance / (spread(|p| p.0, mean_x) * spread(|p| p.1, mean_y))
}

#[test]
fn the_city_is_described() {
    let demo = TransitDemo::new(0);
    assert_eq!(demo.stops().len(), 40);
    assert_eq!(demo.lines().len(), 6);
    assert_eq!(demo.buses().len(), 24);
    assert!(demo.stops().iter().all(|stop| !stop.line_ids.is_empty()));
    assert!(demo.stops().iter().any(|stop| stop.line_ids.len() > 1));
    for line in demo.lines() {
        assert!(
            line.round_trip_seconds > 20 * 60 && line.round_trip_seconds < 90 * 60,
            "{line:?}"
        );
    }
    assert_eq!(
        demo.tables().map(|table| table.to_string()),
        [
            "transit.bus_position",
            "transit.people_count",
            "transit.sensor_data"
        ]
    );
}
