-- Work that one process of a deployment does at a time (issue 12: one background embedder per
-- database): whoever holds a named lease does it, and renews it while working.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
