-- Execution history: every try of an event, and the event's input.

-- One row per try (a replay starts counting attempts again, so rows are ordered by id, not attempt).
CREATE TABLE IF NOT EXISTS execution_attempts (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL,
    attempt      integer NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    outcome      text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'dead', 'skipped')),
    error        text,
    http_status  integer,
    duration_ms  integer
);
CREATE INDEX IF NOT EXISTS execution_attempts_event ON execution_attempts (event_id, id);

-- The event's payload as received, masked and cut to a preview when large (see docs/executor.md).
ALTER TABLE executions ADD COLUMN IF NOT EXISTS input jsonb;

-- Privileges (the roles exist from 0000_roles on; see 0500_privileges for the rules).
GRANT SELECT, INSERT, DELETE ON execution_attempts TO ipaas_executor;
GRANT USAGE ON SEQUENCE execution_attempts_id_seq TO ipaas_executor;
GRANT SELECT ON execution_attempts TO ipaas_gateway;
