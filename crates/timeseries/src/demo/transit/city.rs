//! The fixed city: a 5 × 8 grid of stops in Lisbon's Baixa, about 600 m apart, and six lines
//! over them (five along the rows, one zigzag across), each with its buses.

/// Streets running north–south (the grid's columns) and east–west (its rows); a stop is named
/// after its crossing.
const COLUMN_STREETS: [&str; 8] = [
    "Rua do Ouro",
    "Rua Augusta",
    "Rua da Prata",
    "Rua dos Fanqueiros",
    "Rua da Madalena",
    "Rua dos Remedios",
    "Rua da Graca",
    "Rua do Sol",
];
const ROW_STREETS: [&str; 5] = [
    "Rua do Comercio",
    "Rua da Conceicao",
    "Rua de Sao Nicolau",
    "Rua da Vitoria",
    "Rua de Santa Justa",
];
const SOUTH_LATITUDE: f64 = 38.7080;
const WEST_LONGITUDE: f64 = -9.1420;
/// About 600 m: one degree of latitude is 111.3 km; of longitude, 111.3 km × cos(38.7°).
const ROW_STEP_DEGREES: f64 = 0.0054;
const COLUMN_STEP_DEGREES: f64 = 0.0069;

pub(super) const BUSES_PER_LINE: usize = 4;

/// A bus stop.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    /// `S001` … `S040`.
    pub id: String,
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    /// The lines serving it.
    pub line_ids: Vec<String>,
}

/// A bus line: its buses drive its stops out and back, then wait at the first stop for their
/// next round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `L1` … `L6`.
    pub id: String,
    /// The stops in outbound order.
    pub stop_ids: Vec<String>,
    pub bus_ids: Vec<String>,
    /// How often each bus starts a round trip (the timetable is built for rush hour, so off-peak
    /// buses wait longer at the first stop).
    pub round_trip_seconds: i64,
}

/// A bus of a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Bus {
    /// `B101` … `B604`: the line's number, then the bus's.
    pub id: String,
    pub line_id: String,
}

fn stop_index(row: usize, column: usize) -> usize {
    row * COLUMN_STREETS.len() + column
}

/// The lines as lists of (row, column) crossings, in outbound order.
fn line_routes() -> Vec<Vec<(usize, usize)>> {
    let mut routes: Vec<Vec<(usize, usize)>> = (0..ROW_STREETS.len())
        .map(|row| {
            (0..COLUMN_STREETS.len())
                .map(|column| (row, column))
                .collect()
        })
        .collect();
    routes.push(vec![
        (0, 1),
        (1, 1),
        (1, 2),
        (2, 2),
        (2, 3),
        (3, 3),
        (3, 4),
        (4, 4),
        (4, 5),
    ]);
    routes
}

/// The stops, and each line as stop indices.
pub(super) fn build() -> (Vec<Stop>, Vec<(String, Vec<usize>)>) {
    let mut stops = Vec::new();
    for (row, row_street) in ROW_STREETS.iter().enumerate() {
        for (column, column_street) in COLUMN_STREETS.iter().enumerate() {
            stops.push(Stop {
                id: format!("S{:03}", stop_index(row, column) + 1),
                name: format!("{column_street} / {row_street}"),
                latitude: SOUTH_LATITUDE + row as f64 * ROW_STEP_DEGREES,
                longitude: WEST_LONGITUDE + column as f64 * COLUMN_STEP_DEGREES,
                line_ids: Vec::new(),
            });
        }
    }
    let mut lines = Vec::new();
    for (number, route) in line_routes().into_iter().enumerate() {
        let id = format!("L{}", number + 1);
        let indices: Vec<usize> = route
            .into_iter()
            .map(|(row, column)| stop_index(row, column))
            .collect();
        for &index in &indices {
            stops[index].line_ids.push(id.clone());
        }
        lines.push((id, indices));
    }
    (stops, lines)
}

/// The distance between two points in km (flat-earth: exact enough across a few km).
pub(super) fn distance_km(from: (f64, f64), to: (f64, f64)) -> f64 {
    let mean_latitude = ((from.0 + to.0) / 2.0).to_radians();
    let north = (to.0 - from.0) * 111.32;
    let east = (to.1 - from.1) * 111.32 * mean_latitude.cos();
    north.hypot(east)
}

/// The compass bearing from one point to another, in degrees from north, in [0, 360).
pub(super) fn bearing_degrees(from: (f64, f64), to: (f64, f64)) -> f64 {
    let mean_latitude = ((from.0 + to.0) / 2.0).to_radians();
    let north = to.0 - from.0;
    let east = (to.1 - from.1) * mean_latitude.cos();
    east.atan2(north).to_degrees().rem_euclid(360.0)
}
