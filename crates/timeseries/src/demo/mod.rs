//! Demo data sets: realistic, deterministic records to try the time-series tools on.
//!
//! [`transit`] is a small city's buses (`transit.bus_position`), the people waiting at its stops
//! (`transit.people_count`) and the sensors on both (`transit.sensor_data`). Every value is a
//! function of the seed and the absolute time, so any window of it, generated in any order or
//! in pieces, is the same data.

pub mod transit;
