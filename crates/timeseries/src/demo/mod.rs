//! Demo data sets (being written).
