"""An asyncpg pool whose connections speak JSON natively."""

from __future__ import annotations

import asyncio
import json
import logging

import asyncpg

from libs.common.settings import DatabaseSettings

log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(settings: DatabaseSettings, *, connect_deadline_seconds: float = 60.0) -> asyncpg.Pool:
    """Open the pool, retrying while Postgres starts (up to the deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + connect_deadline_seconds
    delay = 0.2
    while True:
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                dsn=settings.url,
                min_size=settings.pool_min,
                max_size=settings.pool_max,
                command_timeout=settings.command_timeout_seconds,
                init=_init_connection,
            )
            return pool
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError):
            if loop.time() + delay > deadline:
                raise
            log.warning("postgres not reachable, retrying", extra={"retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
