//! `transit`: a small city's buses, stops and sensors, consistent with each other over time.
//!
//! The city (see [`TransitDemo::stops`] and [`TransitDemo::lines`]) is a 5 × 8 grid of stops
//! `S001`…`S040` in Lisbon's Baixa and six lines `L1`…`L6` (a stop may serve two), each run by four
//! buses (`B101`…`B604`). The clock is UTC (Lisbon's winter time).
//!
//! * `transit.bus_position`, every 10 s per bus: dimensions `bus_id`, `line_id`; measures
//!   `latitude`, `longitude`, `speed` (km/h), `heading` (degrees), `passenger_count`,
//!   `next_stop_id` and `delay_seconds` (against an off-peak timetable; negative is early).
//! * `transit.people_count`, every 60 s per stop: dimensions `stop_id`, `stop_name`; measure
//!   `count`, the people waiting.
//! * `transit.sensor_data`, every 60 s per bus and stop: dimensions `entity_id`, `entity_type`
//!   (`bus` or `stop`) and, for buses, `line_id`; measures `temperature`, `humidity`,
//!   `co2_level` and, for buses, `door_status` (`open` or `closed`).
//!
//! How it moves: a bus starts a round trip every [`Line::round_trip_seconds`] (its line's buses
//! evenly spaced), dwells at each stop with its doors open and speed 0, drives to the next
//! (accelerating, cruising, braking; slower in the 07:00–09:30 and 16:30–19:00 rush, faster at
//! night) with `next_stop_id` naming it, and waits at the first stop when back. Riders arrive at
//! each stop for each of its lines at a rate following the time of day; they board the first bus
//! of their line to leave (as many as fit in its 80 places; the others give up) and alight along
//! the way. So a stop's count rises between buses and drops when one leaves, and a bus's CO2
//! follows its load. Temperature follows a daily curve (warmest at 15:00) that drifts from day to
//! day; humidity moves against it.
//!
//! **Invariant:** every value is a function of the seed and the absolute time only: a round
//! trip's timings come from a generator seeded by (seed, bus, round trip), noise from one seeded
//! by (seed, entity, time). So a backfill, a live feed, and a live feed restarted later agree
//! wherever they overlap, and the records of `[a, c)` are those of `[a, b)` then `[b, c)`.

mod city;

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use city::{Bus, Line, Stop};

use crate::{
    AttributeName, Dimensions, MICROS_PER_SECOND, MeasureValue, Record, TableRef, Timestamp,
    TsError,
};

/// The database the demo writes to.
pub const DATABASE: &str = "transit";

/// The demo's three tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitTable {
    BusPosition,
    PeopleCount,
    SensorData,
}

impl TransitTable {
    pub const ALL: [TransitTable; 3] = [Self::BusPosition, Self::PeopleCount, Self::SensorData];

    pub fn name(self) -> &'static str {
        match self {
            Self::BusPosition => "bus_position",
            Self::PeopleCount => "people_count",
            Self::SensorData => "sensor_data",
        }
    }

    /// Seconds between two records of one entity.
    pub fn interval_seconds(self) -> i64 {
        match self {
            Self::BusPosition => 10,
            Self::PeopleCount | Self::SensorData => 60,
        }
    }
}

const BUS_CAPACITY: u32 = 80;
/// The timetable's speed; traffic scales it.
const BASE_SPEED_KMH: f64 = 24.0;
const RUSH_TRAFFIC: f64 = 0.75;
const NIGHT_TRAFFIC: f64 = 1.25;
/// Each segment's speed varies by this much either way.
const SPEED_SPREAD: f64 = 0.1;
const DWELL_SECONDS: std::ops::RangeInclusive<i64> = 12..=35;
const RUSH_DWELL_FACTOR: f64 = 1.4;
const TIMETABLE_DWELL_SECONDS: i64 = 25;
/// Doors open at the end of a round trip for everyone to get off.
const ALIGHT_SECONDS: i64 = 20;
const MIN_LAYOVER_SECONDS: i64 = 120;
/// The longest a bus takes to reach cruising speed, or to stop.
const ACCELERATION_SECONDS: f64 = 20.0;
/// Riders per hour per stop and line at an ordinary daytime hour.
const RIDERS_PER_HOUR: f64 = 20.0;
const SECONDS_PER_DAY: i64 = 86_400;

/// Independent random streams, so adding a draw to one never shifts another.
#[derive(Clone, Copy)]
enum Stream {
    Phase = 1,
    Popularity,
    Timings,
    Riders,
    Demand,
    Weather,
    Sample,
}

/// The transit demo for one seed. Cheap to build; generating is pure computation.
#[derive(Debug, Clone)]
pub struct TransitDemo {
    seed: u64,
    stops: Vec<Stop>,
    lines: Vec<Line>,
    buses: Vec<Bus>,
    routes: Vec<Route>,
    /// Per bus: its line and when (seconds since the epoch, modulo the round trip) it starts one.
    bus_plans: Vec<(usize, i64)>,
    /// Per stop: how busy it is (scales its riders) and the lines serving it.
    stop_popularity: Vec<f64>,
    stop_lines: Vec<Vec<usize>>,
    names: Names,
}

/// A line's route as the buses drive it: visits `0..=last` go out along its stops and back.
#[derive(Debug, Clone)]
struct Route {
    visit_stops: Vec<usize>,
    segment_km: Vec<f64>,
    segment_heading: Vec<f64>,
    round_trip_seconds: i64,
}

impl Route {
    fn last_visit(&self) -> usize {
        self.visit_stops.len() - 1
    }

    /// The visit where the bus turns back.
    fn turn_visit(&self) -> usize {
        self.last_visit() / 2
    }
}

#[derive(Debug, Clone)]
struct Names {
    bus_id: AttributeName,
    line_id: AttributeName,
    stop_id: AttributeName,
    stop_name: AttributeName,
    entity_id: AttributeName,
    entity_type: AttributeName,
    latitude: AttributeName,
    longitude: AttributeName,
    speed: AttributeName,
    heading: AttributeName,
    passenger_count: AttributeName,
    next_stop_id: AttributeName,
    delay_seconds: AttributeName,
    count: AttributeName,
    temperature: AttributeName,
    humidity: AttributeName,
    co2_level: AttributeName,
    door_status: AttributeName,
}

impl Names {
    fn new() -> Self {
        let name = |raw: &str| AttributeName::parse(raw).expect("the demo's names are valid");
        Self {
            bus_id: name("bus_id"),
            line_id: name("line_id"),
            stop_id: name("stop_id"),
            stop_name: name("stop_name"),
            entity_id: name("entity_id"),
            entity_type: name("entity_type"),
            latitude: name("latitude"),
            longitude: name("longitude"),
            speed: name("speed"),
            heading: name("heading"),
            passenger_count: name("passenger_count"),
            next_stop_id: name("next_stop_id"),
            delay_seconds: name("delay_seconds"),
            count: name("count"),
            temperature: name("temperature"),
            humidity: name("humidity"),
            co2_level: name("co2_level"),
            door_status: name("door_status"),
        }
    }
}

/// The timings of one round trip of one bus, in seconds since the epoch.
#[derive(Debug)]
struct RoundTrip {
    arrive: Vec<i64>,
    /// For every visit but the last (after it the bus lays over).
    depart: Vec<i64>,
    timetable_arrive: Vec<i64>,
    timetable_depart: Vec<i64>,
}

/// What a bus is doing at one instant.
#[derive(Debug, Clone, PartialEq)]
struct BusState {
    latitude: f64,
    longitude: f64,
    speed_kmh: f64,
    heading: f64,
    next_stop: usize,
    passengers: u32,
    doors_open: bool,
    delay_seconds: i64,
}

/// Memoised round trips and loads. Only a cache of pure functions: clearing it changes nothing
/// but speed.
#[derive(Debug, Default)]
struct Cache {
    round_trips: HashMap<(usize, i64), Arc<RoundTrip>>,
    loads: HashMap<(usize, i64), Arc<Vec<u32>>>,
}

const CACHE_LIMIT: usize = 4_096;

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// How fast traffic flows at a time of day (seconds since midnight).
fn traffic_factor(second_of_day: i64) -> f64 {
    let hour = second_of_day as f64 / 3_600.0;
    if (7.0..9.5).contains(&hour) || (16.5..19.0).contains(&hour) {
        RUSH_TRAFFIC
    } else if !(5.5..22.0).contains(&hour) {
        NIGHT_TRAFFIC
    } else {
        1.0
    }
}

/// How many riders come, relative to an ordinary daytime hour.
fn demand_factor(hour_of_day: i64) -> f64 {
    match hour_of_day {
        0..=5 => 0.1,
        6 => 0.6,
        7 | 8 => 2.5,
        9..=15 => 1.0,
        16..=18 => 2.2,
        19..=21 => 0.7,
        _ => 0.3,
    }
}

impl TransitDemo {
    pub fn new(seed: u64) -> Self {
        let (stops, line_stops) = city::build();
        let mut lines = Vec::new();
        let mut buses = Vec::new();
        let mut routes = Vec::new();
        let mut bus_plans = Vec::new();
        let mut stop_lines = vec![Vec::new(); stops.len()];
        let demo_rng = |stream: Stream, entity: u64| noise_rng(seed, stream, entity, 0);
        for (line_index, (line_id, outbound)) in line_stops.into_iter().enumerate() {
            for &stop in &outbound {
                stop_lines[stop].push(line_index);
            }
            let visit_stops: Vec<usize> = outbound
                .iter()
                .chain(outbound.iter().rev().skip(1))
                .copied()
                .collect();
            let point = |stop: usize| (stops[stop].latitude, stops[stop].longitude);
            let (segment_km, segment_heading): (Vec<f64>, Vec<f64>) = visit_stops
                .windows(2)
                .map(|pair| {
                    let (from, to) = (point(pair[0]), point(pair[1]));
                    (city::distance_km(from, to), city::bearing_degrees(from, to))
                })
                .unzip();
            let round_trip_seconds = slowest_round_trip_seconds(&segment_km);
            let number = line_index + 1;
            let phase =
                demo_rng(Stream::Phase, line_index as u64).random_range(0..round_trip_seconds);
            let mut bus_ids = Vec::new();
            for bus in 0..city::BUSES_PER_LINE {
                let id = format!("B{number}{:02}", bus + 1);
                let spacing = round_trip_seconds * bus as i64 / city::BUSES_PER_LINE as i64;
                bus_plans.push((line_index, (phase + spacing) % round_trip_seconds));
                buses.push(Bus {
                    id: id.clone(),
                    line_id: line_id.clone(),
                });
                bus_ids.push(id);
            }
            lines.push(Line {
                id: line_id,
                stop_ids: outbound
                    .iter()
                    .map(|&stop| stops[stop].id.clone())
                    .collect(),
                bus_ids,
                round_trip_seconds,
            });
            routes.push(Route {
                visit_stops,
                segment_km,
                segment_heading,
                round_trip_seconds,
            });
        }
        let stop_popularity = (0..stops.len())
            .map(|stop| demo_rng(Stream::Popularity, stop as u64).random_range(0.5..2.0))
            .collect();
        Self {
            seed,
            stops,
            lines,
            buses,
            routes,
            bus_plans,
            stop_popularity,
            stop_lines,
            names: Names::new(),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn stops(&self) -> &[Stop] {
        &self.stops
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    pub fn buses(&self) -> &[Bus] {
        &self.buses
    }

    /// `transit.bus_position`, `transit.people_count`, `transit.sensor_data`.
    pub fn tables(&self) -> [TableRef; 3] {
        TransitTable::ALL.map(table_ref)
    }

    /// Which of the demo's tables `table` is.
    pub fn table_kind(&self, table: &TableRef) -> Result<TransitTable, TsError> {
        TransitTable::ALL
            .into_iter()
            .find(|kind| table_ref(*kind) == *table)
            .ok_or_else(|| {
                TsError::invalid(
                    "table",
                    format!(
                        "{table} is not a table of the transit demo: use transit.bus_position, \
                         transit.people_count or transit.sensor_data"
                    ),
                )
            })
    }

    /// The records of `table` with times in `[start, end)`, in time order (then by entity).
    pub fn records(
        &self,
        table: &TableRef,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<TransitRecords<'_>, TsError> {
        Ok(self.records_of(self.table_kind(table)?, start, end))
    }

    /// The records of one of the demo's tables with times in `[start, end)`.
    pub fn records_of(
        &self,
        table: TransitTable,
        start: Timestamp,
        end: Timestamp,
    ) -> TransitRecords<'_> {
        let interval = table.interval_seconds() * MICROS_PER_SECOND;
        TransitRecords {
            demo: self,
            table,
            tick: first_tick(start, interval),
            end_tick: first_tick(end, interval),
            interval,
            entity: 0,
            entities: self.entity_count(table),
            cache: Cache::default(),
        }
    }

    /// How many records [`records`](Self::records) yields for this window.
    pub fn record_count(
        &self,
        table: &TableRef,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u64, TsError> {
        let kind = self.table_kind(table)?;
        Ok(self.records_of(kind, start, end).remaining())
    }

    fn entity_count(&self, table: TransitTable) -> usize {
        match table {
            TransitTable::BusPosition => self.buses.len(),
            TransitTable::PeopleCount => self.stops.len(),
            TransitTable::SensorData => self.buses.len() + self.stops.len(),
        }
    }

    fn rng(&self, stream: Stream, entity: u64, bucket: i64) -> ChaCha8Rng {
        noise_rng(self.seed, stream, entity, bucket)
    }

    /// The round trip bus `bus` is on at `second`, and when it started.
    fn round_trip_index(&self, bus: usize, second: i64) -> i64 {
        let (line, phase) = self.bus_plans[bus];
        (second - phase).div_euclid(self.routes[line].round_trip_seconds)
    }

    fn round_trip(&self, cache: &mut Cache, bus: usize, index: i64) -> Arc<RoundTrip> {
        if let Some(found) = cache.round_trips.get(&(bus, index)) {
            return Arc::clone(found);
        }
        let (line, phase) = self.bus_plans[bus];
        let route = &self.routes[line];
        let start = phase + index * route.round_trip_seconds;
        let mut rng = self.rng(Stream::Timings, bus as u64, index);
        let last = route.last_visit();
        let (mut arrive, mut depart) = (Vec::with_capacity(last + 1), Vec::with_capacity(last));
        let (mut timetable_arrive, mut timetable_depart) =
            (Vec::with_capacity(last + 1), Vec::with_capacity(last));
        let (mut now, mut timetable_now) = (start, start);
        for (km, _) in route.segment_km.iter().zip(0..last) {
            arrive.push(now);
            timetable_arrive.push(timetable_now);
            let rush = traffic_factor(now.rem_euclid(SECONDS_PER_DAY)) < 1.0;
            let dwell = rng.random_range(DWELL_SECONDS) as f64;
            let dwell = if rush {
                dwell * RUSH_DWELL_FACTOR
            } else {
                dwell
            };
            now += dwell.round() as i64;
            timetable_now += TIMETABLE_DWELL_SECONDS;
            depart.push(now);
            timetable_depart.push(timetable_now);
            let spread = rng.random_range(1.0 - SPEED_SPREAD..1.0 + SPEED_SPREAD);
            let speed = BASE_SPEED_KMH * traffic_factor(now.rem_euclid(SECONDS_PER_DAY)) * spread;
            now += travel_seconds(*km, speed);
            timetable_now += travel_seconds(*km, BASE_SPEED_KMH);
        }
        arrive.push(now);
        timetable_arrive.push(timetable_now);
        let trip = Arc::new(RoundTrip {
            arrive,
            depart,
            timetable_arrive,
            timetable_depart,
        });
        if cache.round_trips.len() >= CACHE_LIMIT {
            cache.round_trips.clear();
        }
        cache.round_trips.insert((bus, index), Arc::clone(&trip));
        trip
    }

    /// When the last bus of `line` left `stop` before `second` (every stop is left at least
    /// once per round trip, so the current and the previous round trip of each bus suffice).
    fn last_departure(&self, cache: &mut Cache, line: usize, stop: usize, second: i64) -> i64 {
        let route = &self.routes[line];
        let mut latest = i64::MIN;
        for bus in (0..self.buses.len()).filter(|&bus| self.bus_plans[bus].0 == line) {
            let current = self.round_trip_index(bus, second);
            for index in [current, current - 1] {
                let trip = self.round_trip(cache, bus, index);
                let left = trip
                    .depart
                    .iter()
                    .zip(&route.visit_stops)
                    .filter(|&(&time, &visited)| visited == stop && time < second)
                    .map(|(&time, _)| time)
                    .max();
                if let Some(left) = left {
                    latest = latest.max(left);
                    break;
                }
            }
        }
        latest
    }

    /// Riders for `line` arriving at `stop` in `[from, to)`: the hourly rate, integrated.
    fn riders_arriving(&self, line: usize, stop: usize, from: i64, to: i64) -> f64 {
        let entity = (stop * self.routes.len() + line) as u64;
        let mut riders = 0.0;
        let mut hour = from.div_euclid(3_600);
        while hour * 3_600 < to {
            let overlap = (to.min((hour + 1) * 3_600) - from.max(hour * 3_600)) as f64;
            let noise = self
                .rng(Stream::Demand, entity, hour)
                .random_range(0.8..1.2);
            let rate = RIDERS_PER_HOUR
                * self.stop_popularity[stop]
                * demand_factor(hour.rem_euclid(24))
                * noise;
            riders += rate * overlap / 3_600.0;
            hour += 1;
        }
        riders
    }

    /// The people waiting at `stop` for `line` at `second`: those who came since its last bus.
    fn waiting(&self, cache: &mut Cache, line: usize, stop: usize, second: i64) -> u32 {
        let since = self.last_departure(cache, line, stop, second);
        self.riders_arriving(line, stop, since, second).floor() as u32
    }

    /// The people on board after each visit of one round trip (0 after the last).
    fn loads(&self, cache: &mut Cache, bus: usize, index: i64) -> Arc<Vec<u32>> {
        if let Some(found) = cache.loads.get(&(bus, index)) {
            return Arc::clone(found);
        }
        let trip = self.round_trip(cache, bus, index);
        let line = self.bus_plans[bus].0;
        let route = &self.routes[line];
        let (turn, last) = (route.turn_visit(), route.last_visit());
        let mut rng = self.rng(Stream::Riders, bus as u64, index);
        let mut on_board = 0u32;
        let mut loads = Vec::with_capacity(last + 1);
        for visit in 0..last {
            let direction_end = if visit < turn { turn } else { last };
            let stops_left = (direction_end - visit + 1) as f64;
            let share = if visit == turn {
                1.0
            } else {
                (rng.random_range(0.5..1.5) / stops_left).min(1.0)
            };
            let alighting = (f64::from(on_board) * share).round() as u32;
            on_board -= alighting.min(on_board);
            let stop = route.visit_stops[visit];
            let boarding = self
                .waiting(cache, line, stop, trip.depart[visit])
                .min(BUS_CAPACITY - on_board);
            on_board += boarding;
            loads.push(on_board);
        }
        loads.push(0);
        let loads = Arc::new(loads);
        if cache.loads.len() >= CACHE_LIMIT {
            cache.loads.clear();
        }
        cache.loads.insert((bus, index), Arc::clone(&loads));
        loads
    }

    fn bus_state(&self, cache: &mut Cache, bus: usize, second: i64) -> BusState {
        let index = self.round_trip_index(bus, second);
        let trip = self.round_trip(cache, bus, index);
        let loads = self.loads(cache, bus, index);
        let route = &self.routes[self.bus_plans[bus].0];
        let last = route.last_visit();
        let point = |visit: usize| {
            let stop = &self.stops[route.visit_stops[visit]];
            (stop.latitude, stop.longitude)
        };
        let stopped = |visit: usize, doors_open, passengers, heading, delay_seconds| {
            let (latitude, longitude) = point(visit);
            BusState {
                latitude,
                longitude,
                speed_kmh: 0.0,
                heading,
                next_stop: route.visit_stops[visit],
                passengers,
                doors_open,
                delay_seconds,
            }
        };
        if second >= trip.arrive[last] {
            // Back at the first stop: everyone gets off, then the bus waits for its next trip.
            let doors_open = second < trip.arrive[last] + ALIGHT_SECONDS;
            let delay = if doors_open {
                trip.arrive[last] - trip.timetable_arrive[last]
            } else {
                0
            };
            return stopped(last, doors_open, 0, route.segment_heading[0], delay);
        }
        let visit = trip.arrive.partition_point(|&arrival| arrival <= second) - 1;
        if second < trip.depart[visit] {
            let delay = trip.depart[visit] - trip.timetable_depart[visit];
            return stopped(
                visit,
                true,
                loads[visit],
                route.segment_heading[visit],
                delay,
            );
        }
        let duration = (trip.arrive[visit + 1] - trip.depart[visit]) as f64;
        let elapsed = (second - trip.depart[visit]) as f64;
        let (fraction, speed_share) = trapezoid_progress(elapsed, duration);
        let (from, to) = (point(visit), point(visit + 1));
        BusState {
            latitude: from.0 + (to.0 - from.0) * fraction,
            longitude: from.1 + (to.1 - from.1) * fraction,
            speed_kmh: route.segment_km[visit] / duration * 3_600.0 * speed_share,
            heading: route.segment_heading[visit],
            next_stop: route.visit_stops[visit + 1],
            passengers: loads[visit],
            doors_open: false,
            delay_seconds: trip.arrive[visit + 1] - trip.timetable_arrive[visit + 1],
        }
    }

    /// The people waiting at a stop, for all its lines.
    fn people_waiting(&self, cache: &mut Cache, stop: usize, second: i64) -> u32 {
        self.stop_lines[stop]
            .iter()
            .map(|&line| self.waiting(cache, line, stop, second))
            .sum()
    }

    /// The outside temperature (°C): a daily curve, warmest at 15:00, whose level drifts from
    /// one day to the next.
    fn outside_temperature(&self, second: i64) -> f64 {
        let day = second.div_euclid(SECONDS_PER_DAY);
        let day_level = |day: i64| self.rng(Stream::Weather, 0, day).random_range(-3.0..3.0);
        let into_day = second.rem_euclid(SECONDS_PER_DAY) as f64 / SECONDS_PER_DAY as f64;
        let level = day_level(day) * (1.0 - into_day) + day_level(day + 1) * into_day;
        let hour = into_day * 24.0;
        16.0 + level + 5.0 * (2.0 * PI * (hour - 15.0) / 24.0).cos()
    }

    fn bus_position_record(&self, cache: &mut Cache, bus: usize, time: Timestamp) -> Record {
        let second = time.as_micros().div_euclid(MICROS_PER_SECOND);
        let state = self.bus_state(cache, bus, second);
        let mut noise = self.rng(Stream::Sample, bus as u64, second);
        // GPS wanders a few metres; a moving bus's heading and speed a little.
        let jitter = 0.00003;
        let latitude = state.latitude + noise.random_range(-jitter..jitter);
        let longitude = state.longitude + noise.random_range(-jitter..jitter);
        let moving = state.speed_kmh > 0.0;
        let (speed, heading) = if moving {
            (
                state.speed_kmh * noise.random_range(0.97..1.03),
                (state.heading + noise.random_range(-1.5..1.5)).rem_euclid(360.0),
            )
        } else {
            (0.0, state.heading)
        };
        let names = &self.names;
        let bus_info = &self.buses[bus];
        record(
            time,
            [
                (&names.bus_id, bus_info.id.as_str()),
                (&names.line_id, bus_info.line_id.as_str()),
            ],
            vec![
                (&names.latitude, MeasureValue::Double(round_to(latitude, 6))),
                (
                    &names.longitude,
                    MeasureValue::Double(round_to(longitude, 6)),
                ),
                (&names.speed, MeasureValue::Double(round_to(speed, 1))),
                (
                    &names.heading,
                    MeasureValue::Double(round_to(heading, 1).rem_euclid(360.0)),
                ),
                (
                    &names.passenger_count,
                    MeasureValue::Bigint(state.passengers.into()),
                ),
                (
                    &names.next_stop_id,
                    MeasureValue::Varchar(self.stops[state.next_stop].id.clone()),
                ),
                (
                    &names.delay_seconds,
                    MeasureValue::Bigint(state.delay_seconds),
                ),
            ],
        )
    }

    fn people_count_record(&self, cache: &mut Cache, stop: usize, time: Timestamp) -> Record {
        let second = time.as_micros().div_euclid(MICROS_PER_SECOND);
        let info = &self.stops[stop];
        let names = &self.names;
        record(
            time,
            [
                (&names.stop_id, info.id.as_str()),
                (&names.stop_name, info.name.as_str()),
            ],
            vec![(
                &names.count,
                MeasureValue::Bigint(self.people_waiting(cache, stop, second).into()),
            )],
        )
    }

    fn sensor_record(&self, cache: &mut Cache, entity: usize, time: Timestamp) -> Record {
        let second = time.as_micros().div_euclid(MICROS_PER_SECOND);
        let outside = self.outside_temperature(second);
        let names = &self.names;
        let mut noise = self.rng(Stream::Sample, 10_000 + entity as u64, second);
        let humidity_outside = 65.0 - 2.2 * (outside - 16.0) + noise.random_range(-3.0..3.0);
        if let Some(bus_info) = self.buses.get(entity) {
            let state = self.bus_state(cache, entity, second);
            let passengers = f64::from(state.passengers);
            let temperature = outside + 2.5 + 0.04 * passengers + noise.random_range(-0.3..0.3);
            let humidity = humidity_outside - 4.0 + 0.1 * passengers;
            // Open doors let fresh air in.
            let fresh_air = if state.doors_open { 25.0 } else { 0.0 };
            let co2 = 430.0 + 11.0 * passengers - fresh_air + noise.random_range(-10.0..10.0);
            let door = if state.doors_open { "open" } else { "closed" };
            record(
                time,
                [
                    (&names.entity_id, bus_info.id.as_str()),
                    (&names.entity_type, "bus"),
                    (&names.line_id, bus_info.line_id.as_str()),
                ],
                vec![
                    (
                        &names.temperature,
                        MeasureValue::Double(round_to(temperature, 1)),
                    ),
                    (
                        &names.humidity,
                        MeasureValue::Double(round_to(humidity.clamp(15.0, 100.0), 1)),
                    ),
                    (&names.co2_level, MeasureValue::Bigint(co2.round() as i64)),
                    (&names.door_status, MeasureValue::Varchar(door.to_owned())),
                ],
            )
        } else {
            let stop = entity - self.buses.len();
            let waiting = f64::from(self.people_waiting(cache, stop, second));
            let temperature = outside + noise.random_range(-0.4..0.4);
            let co2 = 415.0 + 2.0 * waiting + noise.random_range(-8.0..8.0);
            record(
                time,
                [
                    (&names.entity_id, self.stops[stop].id.as_str()),
                    (&names.entity_type, "stop"),
                ],
                vec![
                    (
                        &names.temperature,
                        MeasureValue::Double(round_to(temperature, 1)),
                    ),
                    (
                        &names.humidity,
                        MeasureValue::Double(round_to(humidity_outside.clamp(15.0, 100.0), 1)),
                    ),
                    (&names.co2_level, MeasureValue::Bigint(co2.round() as i64)),
                ],
            )
        }
    }
}

fn table_ref(kind: TransitTable) -> TableRef {
    TableRef::parse(DATABASE, kind.name()).expect("the demo's table names are valid")
}

/// Every draw of the demo comes from a generator seeded by what it is about, never from one
/// carried along, so any value can be computed alone. ChaCha's output is fixed by its seed
/// across versions and platforms.
fn noise_rng(seed: u64, stream: Stream, entity: u64, bucket: i64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(stream as u64).to_le_bytes());
    key[16..24].copy_from_slice(&entity.to_le_bytes());
    key[24..].copy_from_slice(&bucket.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

fn travel_seconds(km: f64, speed_kmh: f64) -> i64 {
    ((km / speed_kmh * 3_600.0).ceil() as i64).max(1)
}

/// The round trip's length: the slowest it can take (every segment in rush traffic at the low
/// end of its spread, every dwell the longest), plus alighting and a short layover, in minutes.
fn slowest_round_trip_seconds(segment_km: &[f64]) -> i64 {
    let slowest_speed = BASE_SPEED_KMH * RUSH_TRAFFIC * (1.0 - SPEED_SPREAD);
    let longest_dwell = (*DWELL_SECONDS.end() as f64 * RUSH_DWELL_FACTOR).round() as i64;
    let seconds: i64 = segment_km
        .iter()
        .map(|km| travel_seconds(*km, slowest_speed) + longest_dwell)
        .sum::<i64>()
        + ALIGHT_SECONDS
        + MIN_LAYOVER_SECONDS;
    seconds.div_euclid(60) * 60 + 60
}

/// Where a bus is along a segment, as a fraction of it, and its speed as a share of the average:
/// it accelerates evenly, cruises, and brakes evenly.
fn trapezoid_progress(elapsed: f64, duration: f64) -> (f64, f64) {
    let ramp = ACCELERATION_SECONDS.min(duration / 4.0);
    // The cruising speed that covers the segment in time, as a share of the average.
    let cruise = duration / (duration - ramp);
    let distance = if elapsed < ramp {
        cruise * elapsed * elapsed / (2.0 * ramp)
    } else if elapsed <= duration - ramp {
        cruise * (ramp / 2.0 + elapsed - ramp)
    } else {
        let left = duration - elapsed;
        duration - cruise * left * left / (2.0 * ramp)
    };
    let speed = cruise * (elapsed / ramp).min(1.0).min((duration - elapsed) / ramp);
    ((distance / duration).clamp(0.0, 1.0), speed.max(0.0))
}

fn record<'a>(
    time: Timestamp,
    dimensions: impl IntoIterator<Item = (&'a AttributeName, &'a str)>,
    mut measures: Vec<(&AttributeName, MeasureValue)>,
) -> Record {
    measures.sort_by(|a, b| a.0.cmp(b.0));
    Record {
        time,
        dimensions: Dimensions::new(
            dimensions
                .into_iter()
                .map(|(name, value)| (name.clone(), value.to_owned())),
        ),
        measures: measures
            .into_iter()
            .map(|(name, value)| (name.clone(), value))
            .collect(),
    }
}

/// The first multiple of `interval` (µs) at or after `time`.
fn first_tick(time: Timestamp, interval: i64) -> i64 {
    let micros = time.as_micros();
    micros.div_euclid(interval) * interval
        + if micros.rem_euclid(interval) == 0 {
            0
        } else {
            interval
        }
}

/// The records of one table over a window, in time order and, at each time, by entity (buses
/// in [`TransitDemo::buses`] order, then stops in [`TransitDemo::stops`] order).
#[derive(Debug)]
pub struct TransitRecords<'a> {
    demo: &'a TransitDemo,
    table: TransitTable,
    /// The next record's time (µs) and entity.
    tick: i64,
    entity: usize,
    end_tick: i64,
    interval: i64,
    entities: usize,
    cache: Cache,
}

impl TransitRecords<'_> {
    /// How many records are still to come.
    pub fn remaining(&self) -> u64 {
        if self.tick >= self.end_tick {
            return 0;
        }
        let ticks = ((self.end_tick - self.tick) / self.interval) as u64;
        ticks * self.entities as u64 - self.entity as u64
    }
}

impl Iterator for TransitRecords<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.tick >= self.end_tick || self.entities == 0 {
            return None;
        }
        let time = Timestamp::from_micros(self.tick);
        let (demo, cache, entity) = (self.demo, &mut self.cache, self.entity);
        let record = match self.table {
            TransitTable::BusPosition => demo.bus_position_record(cache, entity, time),
            TransitTable::PeopleCount => demo.people_count_record(cache, entity, time),
            TransitTable::SensorData => demo.sensor_record(cache, entity, time),
        };
        self.entity += 1;
        if self.entity == self.entities {
            self.entity = 0;
            self.tick += self.interval;
        }
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(self.remaining()).ok();
        (remaining.unwrap_or(usize::MAX), remaining)
    }
}

#[cfg(test)]
mod tests;
