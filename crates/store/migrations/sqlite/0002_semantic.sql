-- Semantic memory: a vector per memory and per link description (little-endian f32, tagged with
-- the model that made it), and a per-tenant change feed that keeps every API process's in-memory
-- search index in step with the database.

ALTER TABLE memories ADD COLUMN embedding BLOB;
ALTER TABLE memories ADD COLUMN embedding_model TEXT;
-- The tenant revision of the memory's last change; indexes fetch rows newer than what they hold.
ALTER TABLE memories ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE INDEX memories_tenant_revision ON memories (tenant_id, revision);
CREATE INDEX memories_embedding_model ON memories (embedding_model);

ALTER TABLE links ADD COLUMN embedding BLOB;
ALTER TABLE links ADD COLUMN embedding_model TEXT;
CREATE INDEX links_embedding_model ON links (embedding_model);

-- One counter per tenant, bumped inside every transaction that changes the tenant's memories.
-- The row lock serialises those transactions per tenant, so revisions commit in order.
CREATE TABLE tenant_revisions (
    tenant_id  TEXT PRIMARY KEY,
    revision   BIGINT NOT NULL
);

-- Deleted memories, so that indexes in other processes drop them too.
CREATE TABLE memory_tombstones (
    tenant_id  TEXT NOT NULL,
    memory_id  TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, memory_id)
);
CREATE INDEX memory_tombstones_revision ON memory_tombstones (tenant_id, revision);
