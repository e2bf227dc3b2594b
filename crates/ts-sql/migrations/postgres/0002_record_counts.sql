-- Each table's stored records, kept by every transaction that adds or deletes records, so that a
-- tenant's quota of records is one indexed sum over its tables rather than a count of
-- ts_records on every write.
ALTER TABLE ts_tables ADD COLUMN record_count BIGINT NOT NULL DEFAULT 0;

UPDATE ts_tables SET record_count = (
    SELECT COUNT(*) FROM ts_records r JOIN ts_series s ON s.id = r.series_id
    WHERE s.table_id = ts_tables.id
);
