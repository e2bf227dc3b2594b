-- Bounds and fairness (issue 10): what a tenant stores is counted, ingest leases are owned,
-- a finished job points at its memory instead of copying it, and change-feed entries can be
-- pruned without an index missing a deletion.

-- Bytes a memory holds (content and kept history), so a tenant's total is a sum of rows.
ALTER TABLE memories ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE memories SET stored_bytes = OCTET_LENGTH(content) + OCTET_LENGTH(evolution_history);
-- History entries dropped to keep evolution_history within its limit.
ALTER TABLE memories ADD COLUMN evolution_dropped BIGINT NOT NULL DEFAULT 0;
-- The model that refused to embed this text: the background embedder does not ask it again.
ALTER TABLE memories ADD COLUMN embedding_refused_by TEXT;
ALTER TABLE links ADD COLUMN embedding_refused_by TEXT;

-- Per-tenant usage, kept in the counter row every writing transaction already locks.
ALTER TABLE tenant_revisions ADD COLUMN memory_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenant_revisions ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
-- Tombstones up to this revision were pruned: an index older than it must reload.
ALTER TABLE tenant_revisions ADD COLUMN pruned_through BIGINT NOT NULL DEFAULT 0;
INSERT INTO tenant_revisions (tenant_id, revision)
    SELECT DISTINCT tenant_id, 0 FROM memories
    WHERE tenant_id NOT IN (SELECT tenant_id FROM tenant_revisions);
UPDATE tenant_revisions SET
    memory_count = (SELECT COUNT(*) FROM memories m WHERE m.tenant_id = tenant_revisions.tenant_id),
    stored_bytes = (SELECT COALESCE(SUM(m.stored_bytes), 0) FROM memories m
                    WHERE m.tenant_id = tenant_revisions.tenant_id);

-- When a memory was deleted, so tombstones can be pruned after a while.
ALTER TABLE memory_tombstones ADD COLUMN deleted_at BIGINT NOT NULL DEFAULT 0;
UPDATE memory_tombstones SET deleted_at = (EXTRACT(EPOCH FROM now()) * 1000000)::BIGINT;

-- Which claim owns a running job: completion, failure, requeue and renewal only succeed for
-- the lease that claimed it.
ALTER TABLE ingest_jobs ADD COLUMN lease_token TEXT;
-- The memory a finished job wrote or merged into; its content is not copied into the job.
ALTER TABLE ingest_jobs ADD COLUMN memory_id TEXT;
UPDATE ingest_jobs SET memory_id = (result::jsonb ->> 'memory_id') WHERE result IS NOT NULL;
UPDATE ingest_jobs SET result = (result::jsonb - 'memory')::text WHERE result IS NOT NULL;
CREATE INDEX ingest_jobs_memory ON ingest_jobs (memory_id);
CREATE INDEX ingest_jobs_tenant_status ON ingest_jobs (tenant_id, status);
CREATE INDEX ingest_jobs_finished ON ingest_jobs (status, completed_at);
CREATE INDEX memory_tombstones_deleted ON memory_tombstones (deleted_at);
