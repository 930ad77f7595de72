-- Executor: a lease on every claim, parked events, and dead letters that could not be decoded.

-- A claim records its owner (one replica process) and how long it holds the row.  A redelivery
-- that meets a live lease held by another replica does not run the action.
ALTER TABLE executions ADD COLUMN IF NOT EXISTS lease_owner text;
ALTER TABLE executions ADD COLUMN IF NOT EXISTS lease_until timestamptz;

-- Events that wait (a retry's backoff, an open breaker, a fairness deferral, a live lease elsewhere)
-- are taken out of the JetStream consumer and kept here until due; any replica republishes them to
-- EVENTS then.  One row per event: parking an event again replaces its row.
CREATE TABLE IF NOT EXISTS deferred_events (
    event_id    uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    subject     text NOT NULL,
    data        bytea NOT NULL,
    headers     jsonb,
    due_at      timestamptz NOT NULL,
    deferrals   integer NOT NULL DEFAULT 0,
    reason      text NOT NULL,
    park_id     uuid NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS deferred_events_due ON deferred_events (due_at);
CREATE INDEX IF NOT EXISTS deferred_events_tenant ON deferred_events (tenant_id);

-- A message on EVENTS that is not a valid envelope is dead-lettered with its raw bytes and the
-- reason; it has no envelope to replay.
ALTER TABLE dead_letters ALTER COLUMN envelope DROP NOT NULL;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS raw bytea;
