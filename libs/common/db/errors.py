"""How a Postgres failure is handled: the database is away (retry later) or this row is bad (never retry)."""

from __future__ import annotations

import asyncpg

# This row's data can never be written, whatever the retries: a value out of range, bytes the
# encoding refuses, a violated constraint, a row too large.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
    UnicodeError,
)

# Everything else that can come out of a query: the server, the connection or the pool is not usable now.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


def is_data_error(exc: BaseException) -> bool:
    return isinstance(exc, DATA_ERRORS)
