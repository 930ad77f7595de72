"""Ordered SQL migrations, applied once, safe under concurrent starts.

Files named ``NNNN_name.sql`` in ``libs/common/db/migrations`` are applied in
order, each in its own transaction, and recorded in ``schema_migrations``.
A session advisory lock serialises concurrent runners: the second waits,
then finds nothing left to do.  Number ranges: ``0000`` the service roles,
``00xx`` core, ``01xx`` auth, ``02xx`` gateway, ``03xx`` executor, ``04xx``
scheduler, ``05xx`` privileges (see :mod:`libs.common.db.roles`).

Migrations run as the owner of the schema (``ipaas``), which then owns every
object they create.  A service role is refused before anything is applied: it
may not change the schema, and what it created it would own.

Run ``python -m libs.common.db.migrate`` to apply them with ``DATABASE_URL``
(the owner's URL).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import asyncpg

from libs.common.db.roles import OWNER, SERVICE_ROLES

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# An arbitrary, fixed 64-bit key for pg_advisory_lock.
ADVISORY_LOCK_KEY = 0x1F0A5_0001

log = logging.getLogger(__name__)


class MigrationRefused(RuntimeError):
    """The connection's role may not run migrations (a service role)."""


def discover(directory: Path = MIGRATIONS_DIR) -> list[tuple[str, str]]:
    """(version, sql) pairs in file-name order."""
    files = sorted(p for p in directory.glob("*.sql") if p.is_file())
    return [(p.stem, p.read_text(encoding="utf-8")) for p in files]


async def apply_migrations(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the versions applied by this call."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        role: str = await conn.fetchval("SELECT current_user")
        if role in SERVICE_ROLES.values():
            raise MigrationRefused(
                f"connected as {role}, a service role: run the migrations as the owner "
                f"({OWNER}), whose URL the migrate step takes as DATABASE_URL"
            )
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
                log.info("migration applied", extra={"version": version, "role": role})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()
    return applied


def main() -> int:
    from libs.common.logs import configure_logging
    from libs.common.settings import DatabaseSettings

    configure_logging("migrate", "INFO")
    try:
        applied = asyncio.run(apply_migrations(DatabaseSettings().url))
    except (MigrationRefused, asyncpg.PostgresError) as exc:
        # A refused role, a missing service role, a privilege the migrating role lacks: say which, exit 1.
        log.error(
            "migrations failed",
            extra={"error": type(exc).__name__, "detail": str(exc)[:500], "hint": getattr(exc, "hint", None)},
        )
        return 1
    log.info("migrations complete", extra={"applied": applied})
    return 0


if __name__ == "__main__":
    sys.exit(main())
