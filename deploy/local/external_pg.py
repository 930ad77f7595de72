"""``make up`` with a ``DATABASE_URL`` of yours: its database is created when missing, if the role may.

The URL is used as it is (no roles of ours are created on a server we do not administer).  When
its database does not exist, the launcher connects to the same server's maintenance database
(``postgres``, else ``template1``) with the same role and, if that role may create databases
(``CREATEDB`` or superuser), creates it, owned by that role.  Otherwise it stops before anything
else starts, and :class:`DatabaseMissing` says exactly what an administrator of that server must
run (``CREATE DATABASE ... OWNER ...``), with a ``psql`` command line that runs it.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

MAINTENANCE_DATABASES = ("postgres", "template1")


class DatabaseMissing(RuntimeError):
    """The database of ``DATABASE_URL`` does not exist and this launcher may not create it."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parts(dsn: str) -> tuple[str, str, str]:
    """(database, role, host:port for humans) of a Postgres URL."""
    parts = urlsplit(dsn)
    database = unquote(parts.path.lstrip("/")) or unquote(parts.username or "")
    role = unquote(parts.username or "") or "(the current user)"
    return database, role, f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


def database_of(dsn: str) -> str:
    return _parts(dsn)[0]


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def instructions(database: str, role: str, where: str, reason: str) -> str:
    sql = f"CREATE DATABASE {quote_ident(database)} OWNER {quote_ident(role)};"
    host, _, port = where.rpartition(":")
    return (
        f'database "{database}" does not exist on {where}, and {reason}.\n'
        f"An administrator of that server can create it (owned by {role}, which runs the migrations):\n"
        f"  {sql}\n"
        f"for example: psql -h {host} -p {port} -U <an admin role> -d postgres -c '{sql}'\n"
        "then run make up again."
    )


async def ensure_database(dsn: str) -> bool:
    """Create the database of ``dsn`` if it is missing and the role may; returns whether it was created.

    Raises :class:`DatabaseMissing` (with the statement to run) when it is missing and cannot be created.
    """
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    database, role, where = _parts(dsn)
    maintenance = None
    for name in MAINTENANCE_DATABASES:
        try:
            maintenance = await asyncpg.connect(with_database(dsn, name))
            break
        except (asyncpg.InvalidCatalogNameError, asyncpg.InsufficientPrivilegeError):
            continue
    if maintenance is None:
        unreachable = f"cannot reach a maintenance database ({', '.join(MAINTENANCE_DATABASES)}) to create it"
        raise DatabaseMissing(instructions(database, role, where, f"role {role} {unreachable}"))
    try:
        if not await maintenance.fetchval("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"):
            raise DatabaseMissing(instructions(database, role, where, f"role {role} may not create databases"))
        try:
            await maintenance.execute(f"CREATE DATABASE {quote_ident(database)}")
        except asyncpg.DuplicateDatabaseError:
            return False  # created meanwhile
        except asyncpg.InsufficientPrivilegeError as exc:
            raise DatabaseMissing(instructions(database, role, where, f"creating it was refused ({exc})")) from None
        return True
    finally:
        await maintenance.close()
