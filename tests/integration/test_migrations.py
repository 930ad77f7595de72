"""Migrations: a second run is a no-op, and concurrent runs end with one applied set."""

from __future__ import annotations

import asyncio
import uuid

from deploy.local.infra import PostgresServer
from libs.common.db.migrate import apply_migrations, discover
from tests.helpers.factories import execute_once, fetch_once, fetchval_once


async def _fresh_db(pg: PostgresServer) -> str:
    name = f"m_{uuid.uuid4().hex[:12]}"
    await execute_once(pg.dsn(), f'CREATE DATABASE "{name}"')
    return pg.dsn(name)


async def test_running_twice_is_a_noop(pg_server: PostgresServer) -> None:
    dsn = await _fresh_db(pg_server)
    expected = [v for v, _ in discover()]
    assert await apply_migrations(dsn) == expected
    assert await apply_migrations(dsn) == []
    rows = await fetch_once(dsn, "SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == expected


async def test_concurrent_runs_apply_each_migration_once(pg_server: PostgresServer) -> None:
    dsn = await _fresh_db(pg_server)
    results = await asyncio.gather(*(apply_migrations(dsn) for _ in range(4)))
    applied = [v for r in results for v in r]
    expected = [v for v, _ in discover()]
    assert sorted(applied) == sorted(expected)  # every migration applied by exactly one runner
    assert await fetchval_once(dsn, "SELECT count(*) FROM schema_migrations") == len(expected)
    assert await fetchval_once(dsn, "SELECT to_regclass('executions') IS NOT NULL")
