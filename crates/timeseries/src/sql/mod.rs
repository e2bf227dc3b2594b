//! `ts_query`: a read-only SQL subset (being written).
