"""Webhook secrets in ``webhook_secrets``: sealed with the vault's KEKs, the current one and every
earlier one still inside its rotation overlap.

- :func:`add` seals a new current secret (a create, a trigger that becomes a webhook).
- :func:`rotate` ends the current secret's life at ``until`` and adds a new current one; earlier
  secrets keep their own ends, so a second rotation inside the overlap drops none of them.
- :func:`read` opens the secrets a webhook may be signed with now.
- :func:`seal_legacy` moves secrets still in the plaintext columns of ``workflows`` (written
  before migration 0203, or by an older replica during an upgrade) into sealed rows and clears
  the columns; the gateway runs it at start, and the look-up for one workflow when it finds one.

The keyring is the vault's (``IPAAS_AUTH_KEKS`` / ``IPAAS_AUTH_KEKS_DIR``, or the dev-mode
directory): ``python -m services.auth rotate-keys`` re-wraps these rows too.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from libs.common.keyring import KeyRing, load_keks
from libs.common.webhook_vault import SealedSecret, open_secret, seal
from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

LEGACY_BATCH = 100

_INSERT = """
INSERT INTO webhook_secrets (id, workflow_id, tenant_id, kek_id, wrapped_dek, ciphertext, valid_until)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
_READ = """
SELECT id, kek_id, wrapped_dek, ciphertext, valid_until FROM webhook_secrets
 WHERE workflow_id = $1 AND (valid_until IS NULL OR valid_until > now())
 ORDER BY valid_until DESC NULLS FIRST
"""
_LEGACY = """
SELECT id, tenant_id, webhook_secret, webhook_secret_prev, webhook_secret_prev_until FROM workflows
 WHERE webhook_secret IS NOT NULL OR webhook_secret_prev IS NOT NULL
 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
# One workflow, at its first look-up: waits for another replica sealing it right now (never skips it),
# so it then reads what that replica sealed instead of finding neither plaintext nor a sealed secret.
_LEGACY_ONE = """
SELECT id, tenant_id, webhook_secret, webhook_secret_prev, webhook_secret_prev_until FROM workflows
 WHERE (webhook_secret IS NOT NULL OR webhook_secret_prev IS NOT NULL) AND id = $1
 FOR UPDATE
"""
_CLEAR_LEGACY = """
UPDATE workflows SET webhook_secret = NULL, webhook_secret_prev = NULL, webhook_secret_prev_until = NULL
 WHERE id = $1
"""


@dataclass(frozen=True, slots=True)
class OpenSecret:
    secret: str
    valid_until: datetime | None  # None: the current secret


async def load_ring(settings: GatewaySettings) -> KeyRing:
    """The vault's keyring, from the same settings auth reads (blocking file I/O runs in a thread)."""
    keks = await asyncio.to_thread(
        load_keks,
        env_spec=settings.keks,
        keys_dir=settings.keks_dir,
        dev_mode=settings.dev_mode,
        dev_dir=settings.dev_keys_dir,
    )
    return KeyRing(keks)


async def add(
    conn: asyncpg.Connection,
    ring: KeyRing,
    tenant_id: uuid.UUID,
    workflow_id: uuid.UUID,
    secret: str,
    valid_until: datetime | None = None,
) -> None:
    """Seal ``secret`` as the current one, or (with ``valid_until``) as an earlier one still in its overlap."""
    secret_id = uuid.uuid4()
    sealed = seal(ring, tenant_id, workflow_id, secret_id, secret)
    await conn.execute(
        _INSERT, secret_id, workflow_id, tenant_id, sealed.kek_id, sealed.wrapped_dek, sealed.ciphertext, valid_until
    )


async def rotate(
    conn: asyncpg.Connection, ring: KeyRing, tenant_id: uuid.UUID, workflow_id: uuid.UUID, secret: str, until: datetime
) -> None:
    """``secret`` becomes current; the current one stays valid until ``until``; expired ones go."""
    await conn.execute("DELETE FROM webhook_secrets WHERE workflow_id = $1 AND valid_until <= now()", workflow_id)
    await conn.execute(
        "UPDATE webhook_secrets SET valid_until = $2 WHERE workflow_id = $1 AND valid_until IS NULL", workflow_id, until
    )
    await add(conn, ring, tenant_id, workflow_id, secret)


async def remove_all(conn: asyncpg.Connection, workflow_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM webhook_secrets WHERE workflow_id = $1", workflow_id)
    await conn.execute(_CLEAR_LEGACY, workflow_id)


async def read(
    conn: asyncpg.Connection | asyncpg.Pool, ring: KeyRing, tenant_id: uuid.UUID, workflow_id: uuid.UUID
) -> list[OpenSecret]:
    """The secrets valid now, current first; raises ``DecryptError`` (``KeyUnavailable``) as the vault does."""
    out: list[OpenSecret] = []
    for row in await conn.fetch(_READ, workflow_id):
        sealed = SealedSecret(row["kek_id"], bytes(row["wrapped_dek"]), bytes(row["ciphertext"]))
        out.append(OpenSecret(open_secret(ring, tenant_id, workflow_id, row["id"], sealed), row["valid_until"]))
    return out


async def _seal_legacy_rows(conn: asyncpg.Connection, ring: KeyRing, rows: list[asyncpg.Record]) -> None:
    now = datetime.now(UTC)
    for row in rows:
        workflow_id, tenant_id = row["id"], row["tenant_id"]
        has_current = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM webhook_secrets WHERE workflow_id = $1 AND valid_until IS NULL)", workflow_id
        )
        if row["webhook_secret"] is not None and not has_current:
            await add(conn, ring, tenant_id, workflow_id, row["webhook_secret"])
        prev_until: datetime | None = row["webhook_secret_prev_until"]
        if row["webhook_secret_prev"] is not None and prev_until is not None and prev_until > now:
            await add(conn, ring, tenant_id, workflow_id, row["webhook_secret_prev"], prev_until)
        await conn.execute(_CLEAR_LEGACY, workflow_id)


async def seal_legacy_one(conn: asyncpg.Connection, ring: KeyRing, workflow_id: uuid.UUID) -> None:
    """Seal the plaintext secrets of one workflow, if it still has any (inside the caller's transaction)."""
    rows = await conn.fetch(_LEGACY_ONE, workflow_id)
    await _seal_legacy_rows(conn, ring, rows)


async def seal_legacy(pool: asyncpg.Pool, ring: KeyRing, *, batch: int = LEGACY_BATCH) -> int:
    """Seal every plaintext secret left in ``workflows``, a batch per transaction; returns the workflows done."""
    done = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_LEGACY, batch)
            if not rows:
                return done
            await _seal_legacy_rows(conn, ring, rows)
        done += len(rows)
        log.info("plaintext webhook secrets sealed", extra={"workflows": done})
