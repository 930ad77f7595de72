-- Executor: multi-step workflows.  Each step's outcome and output is a checkpoint, written before the
-- next step starts: a retry or redelivery resumes at the first step not succeeded, and a succeeded
-- step never runs again.  A filter step that is false ends the execution `filtered` (a success).

CREATE TABLE IF NOT EXISTS execution_steps (
    event_id     uuid NOT NULL,
    step_id      text NOT NULL,
    position     integer NOT NULL,
    -- succeeded, filtered (a filter was false), failed (its last try failed; retried, or passed over
    -- with continue_on_error: see `continued`), dead (gave up: the execution is dead).
    status       text NOT NULL CHECK (status IN ('succeeded', 'filtered', 'failed', 'dead')),
    attempts     integer NOT NULL DEFAULT 0,
    continued    boolean NOT NULL DEFAULT false,
    started_at   timestamptz,
    finished_at  timestamptz,
    duration_ms  integer,
    error        text,
    output       jsonb,
    PRIMARY KEY (event_id, step_id)
);

-- `filtered` is a final status of an execution (and an outcome of a try).
ALTER TABLE executions DROP CONSTRAINT IF EXISTS executions_status_check;
ALTER TABLE executions ADD CONSTRAINT executions_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'dead', 'skipped', 'filtered'));
ALTER TABLE execution_attempts DROP CONSTRAINT IF EXISTS execution_attempts_outcome_check;
ALTER TABLE execution_attempts ADD CONSTRAINT execution_attempts_outcome_check
    CHECK (outcome IN ('succeeded', 'failed', 'dead', 'skipped', 'filtered'));

-- Privileges (roles from 0000_roles; rules in 0500_privileges).  The executor writes checkpoints;
-- the gateway reads them (execution detail), and a DLQ replay with from_start deletes them (a plain
-- replay keeps them: it resumes at the step that died, whose count of attempts starts again).
GRANT SELECT, INSERT, UPDATE, DELETE ON execution_steps TO ipaas_executor;
GRANT SELECT, DELETE ON execution_steps TO ipaas_gateway;
