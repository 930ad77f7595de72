-- The trace a dead letter died in: the W3C traceparent its last message carried, so that a replay
-- (a new trace, started by the replay request) can link back to it.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS traceparent text;
