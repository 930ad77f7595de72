-- Gateway: webhook secrets sealed at rest, and every secret still inside its rotation overlap.
--
-- One row per secret: `valid_until` NULL is the workflow's current secret (one at most); a
-- rotation sets the current one's `valid_until` to the end of its overlap and adds a new current
-- one, so every earlier secret still inside its window keeps verifying.  The secret is sealed like
-- a credential (libs/common/webhook_vault.py): `kek_id`, `wrapped_dek` (nonce || sealed data
-- key), `ciphertext` (nonce || sealed secret).
--
-- The plaintext columns of `workflows` (webhook_secret, webhook_secret_prev,
-- webhook_secret_prev_until) are no longer written.  SQL cannot seal (it has no key): the gateway
-- seals what a row still holds there when it starts, and when it looks a workflow up, then clears
-- the columns (services/gateway/hooks/secrets.py).

CREATE TABLE IF NOT EXISTS webhook_secrets (
    id           uuid PRIMARY KEY,
    workflow_id  uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL,
    kek_id       text NOT NULL,
    wrapped_dek  bytea NOT NULL,
    ciphertext   bytea NOT NULL,
    valid_until  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS webhook_secrets_current ON webhook_secrets (workflow_id) WHERE valid_until IS NULL;
CREATE INDEX IF NOT EXISTS webhook_secrets_workflow ON webhook_secrets (workflow_id, valid_until);
-- rotate-keys walks the rows not under the primary KEK.
CREATE INDEX IF NOT EXISTS webhook_secrets_kek ON webhook_secrets (kek_id, id);

-- The gateway seals, opens, rotates and removes them.
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_secrets TO ipaas_gateway;
-- auth's rotate-keys re-wraps data keys under the new KEK: it reads and writes the wrapping only,
-- never the sealed secret.
GRANT SELECT (id, workflow_id, tenant_id, kek_id, wrapped_dek) ON webhook_secrets TO ipaas_auth;
GRANT UPDATE (kek_id, wrapped_dek) ON webhook_secrets TO ipaas_auth;
