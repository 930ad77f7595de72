"""``python -m services.auth rotate-keys``: re-wrap every data key under the primary KEK.

Credentials first, then the gateway's webhook secrets (``webhook_secrets``: only ``kek_id`` and
``wrapped_dek`` change there too; auth reads no sealed secret, its role may read the wrapping only).

Online: each batch is its own short transaction with ``FOR UPDATE SKIP
LOCKED``, and only the wrapped DEK changes (the ciphertext stays), so the
service keeps resolving credentials throughout.  Idempotent and resumable:
it walks the rows whose ``kek_id`` is not the primary, in id order, so a
second run (or a run after a crash) finds only what is left.  Progress goes
out as JSON log lines.  Exit status: 0 when nothing is left under an old KEK,
1 when some rows could not be unwrapped (named in the log), 2 on bad config.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from libs.common.db import create_pool
from libs.common.logs import configure_logging
from libs.common.webhook_vault import rewrap
from services.auth.key_loading import kek_ring
from services.auth.settings import AuthSettings
from services.auth.signing_keys import KeyConfigError
from services.auth.vault import DecryptError, KekRing, Sealed

log = logging.getLogger("services.auth.rotate")

BATCH_SIZE = 100

_TAKE_CREDENTIALS = """
SELECT id, tenant_id, kek_id, wrapped_dek, ciphertext FROM credentials
 WHERE kek_id <> $1 AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
"""
_PUT_CREDENTIALS = (
    "UPDATE credentials SET kek_id = $2, wrapped_dek = $3, updated_at = now() WHERE id = $1 AND kek_id = $4"
)
_TAKE_HOOKS = """
SELECT id, workflow_id, tenant_id, kek_id, wrapped_dek FROM webhook_secrets
 WHERE kek_id <> $1 AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
"""
_PUT_HOOKS = "UPDATE webhook_secrets SET kek_id = $2, wrapped_dek = $3 WHERE id = $1 AND kek_id = $4"


@dataclass(slots=True)
class RotationReport:
    rewrapped: int = 0
    failed: int = 0
    remaining: int = 0


async def rotate(pool: asyncpg.Pool, keks: KekRing, *, batch_size: int = BATCH_SIZE) -> RotationReport:
    report = RotationReport()
    primary = keks.primary_id
    total = await pool.fetchval("SELECT count(*) FROM credentials WHERE kek_id <> $1", primary)
    log.info("rotation started", extra={"primary_kek": primary, "to_rewrap": total})
    report.rewrapped, report.failed = await _rewrap_rows(
        pool,
        keks,
        _TAKE_CREDENTIALS,
        _PUT_CREDENTIALS,
        _rewrap_credential,
        batch_size=batch_size,
        cannot="cannot unwrap data key",
        names=lambda row: {"cred_id": str(row["id"])},
        progress=("rotation progress", {"of": total}),
    )
    hooks_rewrapped, hooks_failed = await _rewrap_rows(
        pool,
        keks,
        _TAKE_HOOKS,
        _PUT_HOOKS,
        _rewrap_hook,
        batch_size=batch_size,
        cannot="cannot unwrap webhook secret data key",
        names=lambda row: {"webhook_secret_id": str(row["id"]), "workflow_id": str(row["workflow_id"])},
        progress=("webhook secret rotation progress", {}),
    )
    report.rewrapped += hooks_rewrapped
    report.failed += hooks_failed
    report.remaining = await pool.fetchval("SELECT count(*) FROM credentials WHERE kek_id <> $1", primary)
    report.remaining += await pool.fetchval("SELECT count(*) FROM webhook_secrets WHERE kek_id <> $1", primary)
    log.info(
        "rotation finished",
        extra={
            "primary_kek": primary,
            "rewrapped": report.rewrapped,
            "webhook_secrets_rewrapped": hooks_rewrapped,
            "failed": report.failed,
            "remaining_on_old_keks": report.remaining,
        },
    )
    return report


def _rewrap_credential(keks: KekRing, row: asyncpg.Record) -> tuple[str, bytes]:
    sealed = Sealed(row["kek_id"], bytes(row["wrapped_dek"]), bytes(row["ciphertext"]))
    fresh = keks.rewrap(row["tenant_id"], row["id"], sealed)
    return fresh.kek_id, fresh.wrapped_dek


def _rewrap_hook(keks: KekRing, row: asyncpg.Record) -> tuple[str, bytes]:
    return rewrap(keks, row["tenant_id"], row["workflow_id"], row["id"], row["kek_id"], bytes(row["wrapped_dek"]))


async def _rewrap_rows(
    pool: asyncpg.Pool,
    keks: KekRing,
    take: str,
    put: str,
    rewrap_row: Callable[[KekRing, asyncpg.Record], tuple[str, bytes]],
    *,
    batch_size: int,
    cannot: str,
    names: Callable[[asyncpg.Record], dict[str, str]],
    progress: tuple[str, dict[str, Any]],
) -> tuple[int, int]:
    """Re-wrap the data key of each row ``take`` finds, a batch per transaction: (re-wrapped, failed).

    ``take`` reads the rows off the primary KEK ($1) after the last id done ($2), a batch ($3) at a time; ``put``
    writes a row's ($1) new wrapping ($2 its KEK id, $3 the key) unless its KEK changed since it was read ($4).
    A row whose key does not unwrap is logged as ``cannot`` with its ``names`` and left as it is; each
    batch logs ``progress`` (its message and further fields) with the counts so far.
    """
    rewrapped = failed = 0
    last_id = uuid.UUID(int=0)
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(take, keks.primary_id, last_id, batch_size)
            if not rows:
                return rewrapped, failed
            updates: list[tuple[uuid.UUID, str, bytes, str]] = []
            for row in rows:
                try:
                    kid, wrapped = rewrap_row(keks, row)
                except DecryptError:
                    failed += 1
                    log.error(cannot, extra={**names(row), "kek_id": row["kek_id"]})
                    continue
                updates.append((row["id"], kid, wrapped, row["kek_id"]))
            await conn.executemany(put, updates)
            rewrapped += len(updates)
            last_id = rows[-1]["id"]
        message, more = progress
        log.info(message, extra={"rewrapped": rewrapped, "failed": failed, **more})


async def _main(settings: AuthSettings) -> int:
    try:
        keks = await asyncio.to_thread(kek_ring, settings)
    except KeyConfigError as exc:
        log.error("rotation cannot start", extra={"reason": str(exc)})
        return 2
    pool = await create_pool(settings.db, connect_deadline_seconds=30.0)
    try:
        report = await rotate(pool, keks)
    finally:
        await pool.close()
    return 0 if report.failed == 0 and report.remaining == 0 else 1


def main() -> int:
    settings = AuthSettings()
    configure_logging("auth", settings.log_level)
    return asyncio.run(_main(settings))


if __name__ == "__main__":
    sys.exit(main())
