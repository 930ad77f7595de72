-- Least privilege: what each service's role (0000_roles) may do, and nothing more.
-- 05xx: privileges, applied once every table of 00xx-04xx exists.  A later migration that adds a
-- table or a column grants what it needs in the same file (the roles exist from 0000 on).
--
-- The schema belongs to the role that runs the migrations (the owner, `ipaas`): a service role
-- owns nothing, so it can neither change the schema nor grant anything to anyone.  Each service
-- role may read and write the rows of the tables its service owns, and of other services' tables
-- only the columns and statements it uses.  The table, with the reasons: docs/architecture.md.
-- TRUNCATE, REFERENCES and TRIGGER are granted to no one.

-- No role but the database owner creates objects in the schema.  PostgreSQL 15 and later refuse
-- it to PUBLIC already; on an older server this takes it back (where this role may: otherwise it
-- is a warning and nothing else).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- auth: tenants, users, the credential vault and token revocations, and nothing of the others'.
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users, credentials, token_revocations TO ipaas_auth;
GRANT USAGE ON SEQUENCE token_revocations_id_seq TO ipaas_auth;

-- gateway: workflows, their versions and the outbox (the outbox's id comes from its sequence).
-- No grant on tenants: the foreign key from workflows is checked with the owner's privileges.
GRANT SELECT, INSERT, UPDATE, DELETE ON workflows, workflow_versions, outbox TO ipaas_gateway;
GRANT USAGE ON SEQUENCE outbox_id_seq TO ipaas_gateway;
-- The executions and DLQ API read them; a disable or delete reads executions to wait for runs.
GRANT SELECT ON executions, dead_letters TO ipaas_gateway;
-- A DLQ replay makes the execution non-final again, and marks the dead letter replayed (its
-- SELECT ... FOR UPDATE needs an UPDATE privilege on the table as well).
GRANT UPDATE (status, updated_at) ON executions TO ipaas_gateway;
GRANT UPDATE (replayed_at) ON dead_letters TO ipaas_gateway;

-- executor: execution records, dead letters and parked events.
GRANT SELECT, INSERT, UPDATE, DELETE ON executions, dead_letters, deferred_events TO ipaas_executor;
-- The definition pinned by an event, and a workflow's owner and state (never its webhook secrets).
GRANT SELECT ON workflow_versions TO ipaas_executor;
GRANT SELECT (id, tenant_id, is_active, deleted_at) ON workflows TO ipaas_executor;
-- The claim reads the workflow FOR SHARE (a disable waits for it), and Postgres allows a row lock
-- only with an UPDATE privilege on some column.  `id` is the column where it gives no power:
-- workflow_versions refers to it, so changing it fails, and setting it to itself changes nothing.
GRANT UPDATE (id) ON workflows TO ipaas_executor;

-- scheduler: its progress.
GRANT SELECT, INSERT, UPDATE, DELETE ON scheduler_state TO ipaas_scheduler;
-- Schedules: the workflow's state and the versions' definitions (never the webhook secrets),
-- and the one column it writes, the error of a schedule that cannot run.
GRANT SELECT ON workflow_versions TO ipaas_scheduler;
GRANT SELECT (id, tenant_id, current_version, is_active, deleted_at, schedule_error, updated_at)
    ON workflows TO ipaas_scheduler;
GRANT UPDATE (schedule_error) ON workflows TO ipaas_scheduler;
-- A missed slot is recorded as a `skipped` execution: insert only (its ON CONFLICT (event_id)
-- reads the key column), no other column read, no row changed.
GRANT INSERT (id, event_id, tenant_id, workflow_id, workflow_version, trigger, status, attempts, finished_at,
              error, scheduled_for)
    ON executions TO ipaas_scheduler;
GRANT SELECT (event_id) ON executions TO ipaas_scheduler;
