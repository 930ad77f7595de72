-- API keys (auth owns them; docs/auth.md): long-lived, scoped credentials for scripts and CI.
-- Only a SHA-256 digest of the key is stored; the key itself is shown once, when it is created.
CREATE TABLE IF NOT EXISTS api_keys (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_by    uuid,
    name          text NOT NULL,
    prefix        text NOT NULL,
    digest        bytea NOT NULL UNIQUE,
    scopes        text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant_id, created_at, id);

-- Privileges (roles from 0000_roles; rules in 0500_privileges).  Auth creates, lists and revokes.
GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys TO ipaas_auth;
-- The gateway checks keys (the digest, the tenant, the scopes, whether revoked) and records their use;
-- it never reads a key's name or creator, and cannot create, re-scope or un-revoke one.
GRANT SELECT (id, tenant_id, digest, scopes, revoked_at, last_used_at) ON api_keys TO ipaas_gateway;
GRANT UPDATE (last_used_at) ON api_keys TO ipaas_gateway;
