"""The Postgres roles of a server we administer: ``make up``'s embedded Postgres, the test harness's.

:func:`bootstrap` runs as the superuser, before the migrations: it creates (or updates) the
owner ``ipaas`` and the service roles ``ipaas_<service>`` (:mod:`libs.common.db.roles`) with
their passwords, creates the application database owned by ``ipaas`` (or gives it to
``ipaas``), and hands ``ipaas`` the schema objects someone else owns (data of an older
``make up``, when the superuser ran the migrations).  The migrations then run as ``ipaas``
and grant the service roles what they may do.

Passwords are sent as SCRAM-SHA-256 verifiers, never in clear (they stay out of the server's
logs).  ``make up`` keeps them in ``<local dir>/pg-users.json`` (0600, created on the first
start, reused after that; ``make clean`` or deleting the file makes new ones, which the next
start sets), and gives each service a ``DATABASE_URL`` with its own role and password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from deploy.local.infra import PostgresServer
from libs.common.db.roles import ALL_ROLES, OWNER, SERVICE_ROLES

SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for ``password`` (RFC 5802 / 7677).

    ``ALTER ROLE ... PASSWORD '<verifier>'`` sets the password without sending it.  Passwords
    here are ASCII, which SASLprep leaves as they are.
    """
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def with_role(dsn: str, role: str, password: str | None) -> str:
    """``postgresql://[anyone@]host:port/db`` -> the same database as ``role`` (both percent-encoded)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = quote(role, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


def service_urls(dsn: str, passwords: Mapping[str, str]) -> dict[str, str]:
    """Service name -> ``dsn`` as that service's role, with its password."""
    return {service: with_role(dsn, role, passwords.get(role)) for service, role in SERVICE_ROLES.items()}


async def ensure_roles(conn: asyncpg.Connection, passwords: Mapping[str, str]) -> list[str]:
    """Create each role of ``passwords`` that is missing, set every password; returns the created ones.

    Every role can log in and holds no special attribute (``ipaas`` included: it owns the
    schema, which is power enough).
    """
    unknown = set(passwords) - set(ALL_ROLES)
    if unknown:
        raise ValueError(f"not a role of the platform: {sorted(unknown)}")
    created: list[str] = []
    for role, password in passwords.items():
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        statement: str = await conn.fetchval(
            "SELECT format('%s ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD %L', "
            "$1::text, $2::text, $3::text)",
            "ALTER" if exists else "CREATE",
            role,
            scram_verifier(password),
        )
        try:
            await conn.execute(statement)
        except asyncpg.DuplicateObjectError:  # created meanwhile (another database's bootstrap)
            await conn.execute(statement.replace("CREATE ROLE", "ALTER ROLE", 1))
            continue
        if not exists:
            created.append(role)
    return created


async def ensure_database(conn: asyncpg.Connection, name: str) -> bool:
    """Create ``name`` owned by ``ipaas``, or make ``ipaas`` its owner; returns whether it was created."""
    owner = await conn.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name)
    if owner != OWNER:
        statement = "CREATE DATABASE %I OWNER %I" if owner is None else "ALTER DATABASE %I OWNER TO %I"
        await conn.execute(await conn.fetchval(f"SELECT format('{statement}', $1::text, $2::text)", name, OWNER))
    return owner is None


# Statements giving the owner what another role owns in the schema: tables (their indexes and
# column sequences follow them), standalone sequences, functions.
_ADOPT_SQL = """
SELECT format('ALTER %s public.%I OWNER TO %I',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                             ELSE 'TABLE' END, c.relname, $1::text)
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
   AND pg_get_userbyid(c.relowner) <> $1::text
   AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                          AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
UNION ALL
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $1::text)
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) <> $1::text
"""


async def adopt_objects(conn: asyncpg.Connection) -> int:
    """Make ``ipaas`` the owner of everything in the schema ``public``; returns how many objects moved."""
    statements = [r[0] for r in await conn.fetch(_ADOPT_SQL, OWNER)]
    async with conn.transaction():
        for statement in statements:
            await conn.execute(statement)
    return len(statements)


async def bootstrap(server: PostgresServer, database: str, passwords: Mapping[str, str]) -> bool:
    """Roles, database and ownership as the migrations expect them; returns whether the database was created."""
    conn = await asyncpg.connect(server.admin_dsn("postgres"))
    try:
        await ensure_roles(conn, passwords)
        created = await ensure_database(conn, database)
    finally:
        await conn.close()
    if not created:
        conn = await asyncpg.connect(server.admin_dsn(database))
        try:
            await adopt_objects(conn)
        finally:
            await conn.close()
    return created
