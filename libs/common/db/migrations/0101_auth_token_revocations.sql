-- Revoked access tokens: one token (logout: its jti) or every token a user holds (revoke all: the
-- user's tokens issued before not_before).  A row is kept until no token it refuses can still be
-- valid (expires_at), then pruned.  Verifiers read the rows incrementally: txid is the writing
-- transaction's id, and a reader that remembers its snapshot's xmin misses no row committed later
-- (see services/auth/revocation.py).
CREATE TABLE token_revocations (
    id          bigserial PRIMARY KEY,
    user_id     uuid NOT NULL,
    jti         text UNIQUE,
    not_before  bigint,
    expires_at  timestamptz NOT NULL,
    txid        bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((jti IS NULL) <> (not_before IS NULL))
);
CREATE INDEX token_revocations_txid ON token_revocations (txid);
CREATE INDEX token_revocations_user ON token_revocations (user_id, not_before) WHERE not_before IS NOT NULL;
CREATE INDEX token_revocations_expiry ON token_revocations (expires_at);
