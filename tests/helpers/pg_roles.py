"""The platform's Postgres roles in the test harness, set up as in every deployment.

Every server the harness starts gets the owner ``ipaas`` and the service roles, with this
session's :data:`PASSWORDS` (the harness's servers trust local connections, so the passwords
are carried but not checked there; a server with ``password_auth`` checks them).  Databases are
owned by ``ipaas`` and migrated as ``ipaas``.  Tests keep the superuser's URL (``database_url``)
to look at and arrange anything; service processes get their own role's URL
(:func:`as_role`, applied by :func:`tests.helpers.services.start_service`).
"""

from __future__ import annotations

import secrets
import subprocess
from urllib.parse import urlsplit

from deploy.local.infra import SUPERUSER, PostgresServer
from deploy.local.pg_roles import bootstrap, with_role
from libs.common.db.migrate import apply_migrations
from libs.common.db.roles import ALL_ROLES, OWNER, SERVICE_ROLES

PASSWORDS: dict[str, str] = {role: f"pw-{role}-{secrets.token_hex(8)}" for role in ALL_ROLES}


async def prepare(server: PostgresServer, database: str) -> None:
    """Roles, ``database`` owned by ``ipaas``, migrations applied as ``ipaas``."""
    await bootstrap(server, database, PASSWORDS)
    await apply_migrations(with_role(server.dsn(database), OWNER, PASSWORDS[OWNER]))


def as_role(dsn: str, service: str) -> str:
    """``dsn``'s database as ``service``'s own role (``ipaas_<service>``)."""
    role = SERVICE_ROLES[service]
    return with_role(dsn, role, PASSWORDS[role])


def is_superuser_url(dsn: str) -> bool:
    """Whether ``dsn`` connects as the harness's superuser (what tests hand to services by default)."""
    return urlsplit(dsn).username == SUPERUSER


def create_database(server: PostgresServer, name: str) -> None:
    """``createdb name`` as the superuser (over the socket when the server checks passwords)."""
    host = str(server.data_dir) if server.password_auth else "127.0.0.1"
    subprocess.run(
        [str(server.bin / "createdb"), "-h", host, "-p", str(server.port), "-U", SUPERUSER, name],
        check=True,
        capture_output=True,
    )
