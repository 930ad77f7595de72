-- Gateway: outbox headers (trace context of the change), a NOTIFY that wakes
-- the relay on every insert, and indexes for the gateway's tenant-scoped lists.

ALTER TABLE outbox ADD COLUMN IF NOT EXISTS headers jsonb;

CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ipaas_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

CREATE INDEX IF NOT EXISTS executions_tenant_workflow ON executions (tenant_id, workflow_id, created_at DESC, id);
CREATE INDEX IF NOT EXISTS dead_letters_tenant_pending ON dead_letters (tenant_id, dead_at DESC, event_id)
    WHERE replayed_at IS NULL;
