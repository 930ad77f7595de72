"""``make up`` with NATS_URL and DATABASE_URL of yours: a missing database is created when the role
may, and otherwise the launcher stops and prints the statement an administrator must run."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from deploy.local.infra import PostgresServer
from tests.e2e.conftest import launch_to_the_end
from tests.helpers.factories import execute_once, fetch_once, fetchval_once
from tests.helpers.launcher import launcher_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


async def _exists(admin_dsn: str, database: str) -> bool:
    return bool(await fetchval_once(admin_dsn, "SELECT 1 FROM pg_database WHERE datname = $1", database))


async def _tables(dsn: str) -> set[str]:
    return {r[0] for r in await fetch_once(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


async def test_a_role_that_may_create_databases_gets_its_database_created_and_migrated(
    launch: Any, nats_url: str, pg_server: PostgresServer
) -> None:
    database = f"ext_{uuid.uuid4().hex[:12]}"
    # As the superuser, who may create databases.
    run = launch(IPAAS_LOCAL_SERVICES="none", NATS_URL=nats_url, DATABASE_URL=pg_server.dsn(database))
    run.wait_ready()
    assert f"created database {database}" in run.output()
    assert await _exists(pg_server.dsn(), database)
    assert {"workflows", "executions", "schema_migrations"} <= await _tables(pg_server.dsn(database))
    assert run.terminate() == 0


async def test_a_role_that_may_not_is_told_exactly_what_to_run(
    local_dir: Path, launch: Any, nats_url: str, pg_server: PostgresServer
) -> None:
    role, database = f"ext_user_{uuid.uuid4().hex[:8]}", f"ext_{uuid.uuid4().hex[:12]}"
    await execute_once(pg_server.dsn(), f'CREATE ROLE "{role}" LOGIN NOCREATEDB')  # the test server trusts local logins
    dsn = f"postgresql://{role}@127.0.0.1:{pg_server.port}/{database}"
    env = launcher_env(local_dir, IPAAS_LOCAL_SERVICES="none", NATS_URL=nats_url, DATABASE_URL=dsn)
    refused = launch_to_the_end(env, timeout=60)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    statement = f'CREATE DATABASE "{database}" OWNER "{role}";'
    assert f'database "{database}" does not exist on 127.0.0.1:{pg_server.port}' in refused.stdout
    assert f"role {role} may not create databases" in refused.stdout
    assert statement in refused.stdout
    assert "InvalidCatalogNameError" not in refused.stdout
    assert not await _exists(pg_server.dsn(), database)

    # What it says to run is what works: an administrator runs it, and make up starts.
    await execute_once(pg_server.dsn(), statement.rstrip(";"))
    run = launch(env)
    run.wait_ready()
    assert "migrations:" in run.output() and "created database" not in run.output()
    assert "workflows" in await _tables(pg_server.dsn(database))
    assert run.terminate() == 0
