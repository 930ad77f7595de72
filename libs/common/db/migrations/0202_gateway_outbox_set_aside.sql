-- Gateway: the outbox relay sets aside a row it can never publish (a message
-- JetStream refuses for good, a malformed subject, a row whose publish keeps
-- failing) instead of stopping every tenant's changes behind it. The row keeps
-- its payload; `error` says why, `attempts` how often it was tried. An
-- operator retries it by clearing `failed_at` (docs/gateway.md).

ALTER TABLE outbox
    ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS error text,
    ADD COLUMN IF NOT EXISTS failed_at timestamptz;

-- The relay's scan skips set-aside rows, and so does its partial index.
DROP INDEX IF EXISTS outbox_pending;
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL AND failed_at IS NULL;

-- Set-aside rows, for operators and the relay's gauge.
CREATE INDEX IF NOT EXISTS outbox_set_aside ON outbox (id) WHERE failed_at IS NOT NULL AND published_at IS NULL;
