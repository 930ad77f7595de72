-- Gateway: bulk DLQ replay jobs (POST /api/dlq/replay).  A job is its filter, its dead letters
-- (taken when it is accepted) and its progress; any gateway replica works through it in batches,
-- each batch one transaction with the replays it queues, so a restart resumes where it stopped.

CREATE TABLE IF NOT EXISTS replay_jobs (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    filter       jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
    total        integer NOT NULL,
    done         integer NOT NULL DEFAULT 0,
    skipped      integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX IF NOT EXISTS replay_jobs_running ON replay_jobs (created_at) WHERE state = 'running';

-- One row per dead letter of a job; done_at is set in the transaction that replays it.
CREATE TABLE IF NOT EXISTS replay_job_items (
    job_id    uuid NOT NULL REFERENCES replay_jobs (id) ON DELETE CASCADE,
    event_id  uuid NOT NULL,
    done_at   timestamptz,
    replayed  boolean,
    PRIMARY KEY (job_id, event_id)
);
CREATE INDEX IF NOT EXISTS replay_job_items_pending ON replay_job_items (job_id, event_id) WHERE done_at IS NULL;

-- Bulk replay filters dead letters by workflow and time.
CREATE INDEX IF NOT EXISTS dead_letters_tenant_workflow_pending ON dead_letters (tenant_id, workflow_id, dead_at)
    WHERE replayed_at IS NULL;

-- Privileges (roles from 0000_roles; rules in 0500_privileges).  The gateway owns the jobs; a replay
-- (single or bulk) also starts the execution's count of attempts again, so it gets the whole retry policy.
GRANT SELECT, INSERT, UPDATE, DELETE ON replay_jobs, replay_job_items TO ipaas_gateway;
GRANT UPDATE (attempts) ON executions TO ipaas_gateway;
