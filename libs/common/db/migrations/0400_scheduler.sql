-- Scheduler: per-workflow progress, shared by every scheduler replica.
-- last_slot is the newest slot accounted for (fired, or the moment a schedule was
-- (re)loaded live).  Written with GREATEST, so it never moves backwards and
-- concurrent replicas cannot undo each other.  No foreign key: a row for a
-- workflow that was removed is harmless and must not fail a batch write.
CREATE TABLE scheduler_state (
    workflow_id  uuid PRIMARY KEY,
    last_slot    timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
