"""``python -m services.auth rotate-keys``: re-wrap every data key under the primary KEK.

Credentials first, then the gateway's webhook secrets (:mod:`services.auth.rotate_webhooks`).

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
from dataclasses import dataclass

import asyncpg

from libs.common.db import create_pool
from libs.common.logs import configure_logging
from services.auth.key_loading import kek_ring
from services.auth.rotate_webhooks import REMAINING, rotate_webhook_secrets
from services.auth.settings import AuthSettings
from services.auth.signing_keys import KeyConfigError
from services.auth.vault import DecryptError, KekRing, Sealed

log = logging.getLogger("services.auth.rotate")

BATCH_SIZE = 100


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
    last_id = uuid.UUID(int=0)
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, tenant_id, kek_id, wrapped_dek, ciphertext FROM credentials
                   WHERE kek_id <> $1 AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED""",
                primary,
                last_id,
                batch_size,
            )
            if not rows:
                break
            updates: list[tuple[uuid.UUID, str, bytes, str]] = []
            for row in rows:
                sealed = Sealed(row["kek_id"], bytes(row["wrapped_dek"]), bytes(row["ciphertext"]))
                try:
                    fresh = keks.rewrap(row["tenant_id"], row["id"], sealed)
                except DecryptError:
                    report.failed += 1
                    log.error("cannot unwrap data key", extra={"cred_id": str(row["id"]), "kek_id": row["kek_id"]})
                    continue
                updates.append((row["id"], fresh.kek_id, fresh.wrapped_dek, row["kek_id"]))
            await conn.executemany(
                """UPDATE credentials SET kek_id = $2, wrapped_dek = $3, updated_at = now()
                   WHERE id = $1 AND kek_id = $4""",
                updates,
            )
            report.rewrapped += len(updates)
            last_id = rows[-1]["id"]
        log.info("rotation progress", extra={"rewrapped": report.rewrapped, "failed": report.failed, "of": total})
    hooks_rewrapped, hooks_failed = await rotate_webhook_secrets(pool, keks, batch_size=batch_size)
    report.rewrapped += hooks_rewrapped
    report.failed += hooks_failed
    report.remaining = await pool.fetchval("SELECT count(*) FROM credentials WHERE kek_id <> $1", primary)
    report.remaining += await pool.fetchval(REMAINING, primary)
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
