-- Ingest takes one tenant's jobs per batch, tenants in turn (issue 10): finding the next tenant
-- with waiting jobs reads this index instead of every job.
CREATE INDEX ingest_jobs_waiting_tenants ON ingest_jobs (status, tenant_id, created_at);
