"""Ordered SQL migrations, applied once, safe under concurrent starts.

Files named ``NNNN_name.sql`` in ``libs/common/db/migrations`` are applied in
order, each in its own transaction, and recorded in ``schema_migrations``.
A session advisory lock serialises concurrent runners: the second waits,
then finds nothing left to do.

Run ``python -m libs.common.db.migrate`` to apply them with ``DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# An arbitrary, fixed 64-bit key for pg_advisory_lock.
ADVISORY_LOCK_KEY = 0x1F0A5_0001

log = logging.getLogger(__name__)


def discover(directory: Path = MIGRATIONS_DIR) -> list[tuple[str, str]]:
    """(version, sql) pairs in file-name order."""
    files = sorted(p for p in directory.glob("*.sql") if p.is_file())
    return [(p.stem, p.read_text(encoding="utf-8")) for p in files]


async def apply_migrations(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the versions applied by this call."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version text PRIMARY KEY,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, sql in discover(directory):
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied.append(version)
                log.info("migration applied", extra={"version": version})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()
    return applied


def main() -> None:
    from libs.common.logs import configure_logging
    from libs.common.settings import DatabaseSettings

    configure_logging("migrate", "INFO")
    applied = asyncio.run(apply_migrations(DatabaseSettings().url))
    log.info("migrations complete", extra={"applied": applied})


if __name__ == "__main__":
    main()
