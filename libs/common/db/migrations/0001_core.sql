-- Core schema shared by the services. Later migrations add to it.
-- Number ranges: 00xx core, 01xx auth, 02xx gateway, 03xx executor, 04xx scheduler.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email          text NOT NULL,
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

-- A workflow is a stable id with a current version; every change writes a
-- new immutable row in workflow_versions.
CREATE TABLE workflows (
    id                          uuid PRIMARY KEY,
    tenant_id                   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                        text NOT NULL,
    current_version             integer NOT NULL,
    is_active                   boolean NOT NULL DEFAULT true,
    trigger_type                text NOT NULL,
    webhook_secret              text,
    webhook_secret_prev         text,
    webhook_secret_prev_until   timestamptz,
    schedule_error              text,
    deleted_at                  timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflows_tenant ON workflows (tenant_id, created_at, id);

CREATE TABLE workflow_versions (
    workflow_id  uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version      integer NOT NULL,
    definition   jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version)
);

-- Transactional outbox: written in the same transaction as the change it
-- announces, published by a relay, marked when JetStream acknowledged it.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    subject       text NOT NULL,
    msg_id        text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

-- One row per event, keyed by event_id: the row's uniqueness is what makes a
-- redelivered or re-sent event run at most once in effect.
CREATE TABLE executions (
    id                uuid PRIMARY KEY,
    event_id          uuid NOT NULL UNIQUE,
    tenant_id         uuid NOT NULL,
    workflow_id       uuid NOT NULL,
    workflow_version  integer NOT NULL,
    trigger           text NOT NULL,
    status            text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'dead', 'skipped')),
    attempts          integer NOT NULL DEFAULT 0,
    started_at        timestamptz,
    finished_at       timestamptz,
    duration_ms       integer,
    error             text,
    output            jsonb,
    trace_id          text,
    scheduled_for     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX executions_tenant ON executions (tenant_id, created_at DESC, id);
CREATE INDEX executions_workflow ON executions (workflow_id, created_at DESC);

CREATE TABLE dead_letters (
    event_id     uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    workflow_id  uuid NOT NULL,
    reason       text NOT NULL,
    attempts     integer NOT NULL,
    envelope     jsonb NOT NULL,
    dead_at      timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz
);
CREATE INDEX dead_letters_tenant ON dead_letters (tenant_id, dead_at DESC);
