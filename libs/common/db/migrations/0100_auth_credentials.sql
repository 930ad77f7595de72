-- Credentials of the auth service's vault (AES-256-GCM envelope encryption).
-- ciphertext = nonce || AES-GCM(DEK, secret JSON); wrapped_dek = nonce || AES-GCM(KEK, DEK).
-- Both authenticate (tenant_id, id), so a row's bytes do not open under another tenant or id.
CREATE TABLE credentials (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    type         text NOT NULL CHECK (type IN ('slack', 'discord', 'openweather', 'http')),
    kek_id       text NOT NULL,
    wrapped_dek  bytea NOT NULL,
    ciphertext   bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credentials_tenant ON credentials (tenant_id, created_at, id);
-- rotate-keys walks the rows that are not yet under the primary KEK.
CREATE INDEX credentials_kek ON credentials (kek_id, id);
