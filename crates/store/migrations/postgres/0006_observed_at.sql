-- When a memory's fact was observed (issue 15: time-aware search), in microseconds since the
-- epoch like every time here. NULL for memories written before: they were observed when created.
ALTER TABLE memories ADD COLUMN observed_at BIGINT;
