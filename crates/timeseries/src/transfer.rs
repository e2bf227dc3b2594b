//! CSV and JSON-lines import and export (being written).
