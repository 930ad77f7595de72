"""Which failures mean "a dependency cannot be reached right now" (503 with ``Retry-After``, never 500).

:func:`unavailable_code` is the one classification the error middleware
uses for every route of every service, so no handler needs its own
``try``.  It answers:

- ``database_unavailable`` for Postgres being away: the connection-class
  errors (refused, closed mid-query, the server shutting down or still
  starting, out of connection slots), and ``OSError`` / ``TimeoutError``
  raised inside asyncpg (connecting, waiting for a pool connection, a query
  over the command timeout).
- ``service_unavailable`` for any other ``OSError`` or ``TimeoutError``: some
  other dependency did not answer.
- ``None`` for everything else, which stays a 500 ``internal_error``.

asyncpg's ``DataError`` and other ``InterfaceError`` subclasses describe a bad
argument or a client feature, not an outage, and are deliberately left out.
"""

from __future__ import annotations

import traceback

import asyncpg

DATABASE_UNAVAILABLE = "database_unavailable"
SERVICE_UNAVAILABLE = "service_unavailable"

_POSTGRES_AWAY: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # refused, closed in the middle of an operation, ...
    asyncpg.CannotConnectNowError,  # starting up or in recovery
    asyncpg.AdminShutdownError,  # fast or smart shutdown
    asyncpg.CrashShutdownError,  # immediate shutdown, a crashed backend
    asyncpg.TooManyConnectionsError,
)


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means Postgres cannot be reached now (the request may succeed later)."""
    if isinstance(exc, _POSTGRES_AWAY):
        return True
    if type(exc) is asyncpg.InterfaceError:  # "connection is closed", "pool is closing"
        return True
    if isinstance(exc, OSError | TimeoutError):
        return _raised_in_asyncpg(exc)
    return False


def unavailable_code(exc: BaseException) -> str | None:
    """The error code of a 503 for ``exc``, or ``None`` if it is not an unavailability."""
    if is_database_unavailable(exc):
        return DATABASE_UNAVAILABLE
    if isinstance(exc, OSError | TimeoutError):
        return SERVICE_UNAVAILABLE
    return None


def _raised_in_asyncpg(exc: BaseException) -> bool:
    frames = traceback.walk_tb(exc.__traceback__)
    return any(str(frame.f_globals.get("__name__", "")).startswith("asyncpg") for frame, _ in frames)
