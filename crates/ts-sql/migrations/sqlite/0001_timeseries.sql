-- Time series beside the memory store, in the same database. Times are Unix microseconds.
CREATE TABLE ts_tables (
    -- AUTOINCREMENT: ids are never reused, so a dropped table's series can never be mistaken
    -- for a new table's.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    database_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    retention_us INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL,
    -- membrain_timeseries::TableSchema as JSON: dimension names and each measure's type.
    schema TEXT NOT NULL,
    UNIQUE (tenant_id, database_name, table_name)
);

CREATE TABLE ts_series (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    table_id INTEGER NOT NULL REFERENCES ts_tables (id),
    -- Dimensions::key(): a JSON list of [name, value] pairs, sorted by name.
    dims_key TEXT NOT NULL,
    UNIQUE (table_id, dims_key)
);

-- One row per record, its measures together as compact JSON typed by the table's schema. No
-- foreign key: only this crate writes here, creating the series in the same transaction, and a
-- per-row check would slow every insert.
CREATE TABLE ts_records (
    series_id INTEGER NOT NULL,
    time_us INTEGER NOT NULL,
    measures TEXT NOT NULL,
    PRIMARY KEY (series_id, time_us)
) WITHOUT ROWID;
