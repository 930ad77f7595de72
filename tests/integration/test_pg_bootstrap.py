"""``make up``'s Postgres: passwords over TCP, roles bootstrapped, older data handed to the owner (real Postgres).

The server runs as ``make up`` runs it (``password_auth``).  It starts with the data an older
``make up`` left: the database owned by the superuser, migrated by the superuser, before roles
existed.  Bootstrapping gives everything to ``ipaas``, the migrations then run as ``ipaas``, and
each role logs in with its own password and no other.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from deploy.local.infra import PostgresServer, free_port
from deploy.local.nats_authz import stored_passwords
from deploy.local.pg_roles import bootstrap, service_urls, with_role
from libs.common.db.migrate import MIGRATIONS_DIR, apply_migrations, discover
from libs.common.db.roles import ALL_ROLES, OWNER
from tests.helpers.factories import connection, fetch_once, fetchval_once
from tests.helpers.pg_roles import create_database

BEFORE_ROLES = (
    "0001_core",
    "0100_auth_credentials",
    "0201_gateway_outbox",
    "0202_gateway_outbox_set_aside",
    "0301_executor",
    "0302_executor_leases",
    "0400_scheduler",
)
REFUSED_LOGIN = (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)


@pytest.fixture
def local_pg(tmp_path: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path / "pg", free_port(), durable=False, password_auth=True)
    server.start()
    yield server
    server.kill()


@pytest.mark.slow
async def test_older_data_is_adopted_and_every_role_needs_its_own_password(
    local_pg: PostgresServer, tmp_path: Path
) -> None:
    old = tmp_path / "old-migrations"
    old.mkdir()
    for version in BEFORE_ROLES:
        shutil.copy(MIGRATIONS_DIR / f"{version}.sql", old / f"{version}.sql")
    create_database(local_pg, "ipaas")
    assert await apply_migrations(local_pg.admin_dsn("ipaas"), old) == list(BEFORE_ROLES)

    passwords = stored_passwords(tmp_path / "pg-users.json", ALL_ROLES)
    assert set(passwords) == set(ALL_ROLES) and (tmp_path / "pg-users.json").stat().st_mode & 0o077 == 0
    assert stored_passwords(tmp_path / "pg-users.json", ALL_ROLES) == passwords  # kept across starts
    assert await bootstrap(local_pg, "ipaas", passwords) is False  # it existed
    tcp = local_pg.dsn("ipaas")
    owner = with_role(tcp, OWNER, passwords[OWNER])
    # Everything the older deployment did not have yet: the roles, the newer tables, the privileges.
    newer = [version for version, _ in discover() if version not in BEFORE_ROLES]
    assert newer[0] == "0000_roles" and newer[-1] == "0500_privileges"
    assert await apply_migrations(owner) == newer

    owners = await fetch_once(
        local_pg.admin_dsn("ipaas"),
        """SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace
     UNION SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
     UNION SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'ipaas'""",
    )
    assert {r[0] for r in owners} == {OWNER}

    # Over TCP: the superuser cannot log in at all, a role only with its own password.
    with pytest.raises(REFUSED_LOGIN):
        await asyncpg.connect(tcp)
    urls = service_urls(tcp, passwords)
    with pytest.raises(REFUSED_LOGIN):
        await asyncpg.connect(with_role(tcp, "ipaas_gateway", passwords["ipaas_executor"]))
    async with connection(urls["gateway"]) as gateway:
        assert await gateway.fetchval("SELECT current_user") == "ipaas_gateway"
        assert await gateway.fetchval("SELECT count(*) FROM workflows") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await gateway.fetch("SELECT * FROM credentials")

    # New passwords (the file deleted): the next bootstrap sets them, and the old ones stop working.
    (tmp_path / "pg-users.json").unlink()
    renewed = stored_passwords(tmp_path / "pg-users.json", ALL_ROLES)
    assert renewed[OWNER] != passwords[OWNER]
    await bootstrap(local_pg, "ipaas", renewed)
    with pytest.raises(REFUSED_LOGIN):
        await asyncpg.connect(owner)
    renewed_owner = with_role(tcp, OWNER, renewed[OWNER])
    assert await fetchval_once(renewed_owner, "SELECT count(*) FROM schema_migrations") == len(discover())


@pytest.mark.slow
async def test_a_new_database_is_created_for_the_owner(local_pg: PostgresServer, tmp_path: Path) -> None:
    passwords = stored_passwords(tmp_path / "pg-users.json", ALL_ROLES)
    assert await bootstrap(local_pg, "ipaas", passwords) is True
    assert await bootstrap(local_pg, "ipaas", passwords) is False
    owner = with_role(local_pg.dsn("ipaas"), OWNER, passwords[OWNER])
    applied = await apply_migrations(owner)
    assert applied[0] == "0000_roles" and applied[-1] == "0500_privileges"
    powers = "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
    assert await fetchval_once(owner, powers) is False
    tables = await fetch_once(owner, "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert {r[0] for r in tables} == {OWNER}
