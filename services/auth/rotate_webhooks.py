"""``rotate-keys`` for webhook secrets: re-wrap each data key in ``webhook_secrets`` under the primary KEK.

As for credentials (:mod:`services.auth.rotate`): batches in short transactions with
``FOR UPDATE SKIP LOCKED``, rows walked in id order, only ``kek_id`` and ``wrapped_dek``
change.  Auth reads no sealed secret here (its role may read the wrapping only).
"""

from __future__ import annotations

import logging
import uuid

import asyncpg

from libs.common.keyring import DecryptError
from libs.common.webhook_vault import rewrap
from services.auth.vault import KekRing

log = logging.getLogger("services.auth.rotate")

_TAKE = """
SELECT id, workflow_id, tenant_id, kek_id, wrapped_dek FROM webhook_secrets
 WHERE kek_id <> $1 AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
"""
_PUT = "UPDATE webhook_secrets SET kek_id = $2, wrapped_dek = $3 WHERE id = $1 AND kek_id = $4"
REMAINING = "SELECT count(*) FROM webhook_secrets WHERE kek_id <> $1"


async def rotate_webhook_secrets(pool: asyncpg.Pool, keks: KekRing, *, batch_size: int) -> tuple[int, int]:
    """(re-wrapped, failed)."""
    primary = keks.primary_id
    rewrapped = failed = 0
    last_id = uuid.UUID(int=0)
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_TAKE, primary, last_id, batch_size)
            if not rows:
                return rewrapped, failed
            updates: list[tuple[uuid.UUID, str, bytes, str]] = []
            for row in rows:
                try:
                    kid, wrapped = rewrap(
                        keks, row["tenant_id"], row["workflow_id"], row["id"], row["kek_id"], bytes(row["wrapped_dek"])
                    )
                except DecryptError:
                    failed += 1
                    log.error(
                        "cannot unwrap webhook secret data key",
                        extra={
                            "webhook_secret_id": str(row["id"]),
                            "workflow_id": str(row["workflow_id"]),
                            "kek_id": row["kek_id"],
                        },
                    )
                    continue
                updates.append((row["id"], kid, wrapped, row["kek_id"]))
            await conn.executemany(_PUT, updates)
            rewrapped += len(updates)
            last_id = rows[-1]["id"]
        log.info("webhook secret rotation progress", extra={"rewrapped": rewrapped, "failed": failed})
