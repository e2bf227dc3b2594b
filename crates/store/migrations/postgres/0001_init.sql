-- Membrain schema, PostgreSQL dialect. Times are Unix microseconds (UTC); lists are JSON text.

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    label       TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE memories (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    content            TEXT NOT NULL,
    content_hash       TEXT NOT NULL,
    tags               TEXT NOT NULL,
    category           TEXT NOT NULL,
    context            TEXT NOT NULL,
    keywords           TEXT NOT NULL,
    evolution_history  TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
-- One memory per normalised content per tenant: exact duplicates merge instead.
CREATE UNIQUE INDEX memories_tenant_hash ON memories (tenant_id, content_hash);
CREATE INDEX memories_tenant_created ON memories (tenant_id, created_at);
CREATE INDEX memories_tenant_category ON memories (tenant_id, category);

CREATE TABLE memory_tags (
    memory_id  TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (memory_id, tag)
);
CREATE INDEX memory_tags_tenant_tag ON memory_tags (tenant_id, tag);

-- An undirected edge, stored once with memory_a < memory_b.
CREATE TABLE links (
    memory_a     TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    memory_b     TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    tenant_id    TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (memory_a, memory_b)
);
CREATE INDEX links_memory_b ON links (memory_b);
CREATE INDEX links_tenant ON links (tenant_id);

CREATE TABLE ingest_jobs (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    status            TEXT NOT NULL,
    request           TEXT NOT NULL,
    result            TEXT,
    error_code        TEXT,
    error_message     TEXT,
    attempts          BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    completed_at      BIGINT,
    lease_expires_at  BIGINT
);
CREATE INDEX ingest_jobs_pending ON ingest_jobs (status, created_at);
