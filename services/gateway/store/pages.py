"""Pages of definitions: ``/api/workflows`` and ``/api/workflows/{id}/versions``, bounded in rows and in bytes.

A page holds at most ``limit`` rows, and its definitions add up to at most
``max_bytes`` (each measured as Postgres prints it, ``octet_length(definition::text)``,
a little more than the compact JSON the API sends).  The page ends at the first row
that would cross the budget, with a cursor to the rest; its first row is always
included, so paging always moves on even past a definition saved before a smaller
``IPAAS_GATEWAY_DEFINITION_MAX_BYTES``.  Sizes are summed in Postgres over the
``limit + 1`` candidates, so no definition beyond the budget leaves the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.gateway.store.workflows import COLUMNS, CURRENT, get


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[asyncpg.Record]
    more: bool  # rows after these exist: give a cursor


def _page(rows: list[asyncpg.Record]) -> Page:
    candidates = int(rows[0]["candidates"]) if rows else 0
    return Page(rows, more=candidates > len(rows))


def _fitted(key: str) -> str:
    """Running totals over ``candidates`` in ``key`` order; ``candidates`` counts the limit + 1 rows looked at."""
    return f"""fitted AS (
    SELECT {key}, count(*) OVER () AS candidates, row_number() OVER (ORDER BY {key}) AS n,
           sum(size) OVER (ORDER BY {key}) AS running
    FROM candidates
)"""


# $2 = limit, $3 = byte budget.
_KEEP = "f.n <= $2 AND (f.n = 1 OR f.running <= $3)"


async def workflows_page(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None, max_bytes: int
) -> Page:
    """The tenant's live workflows in ``(created_at, id)`` order, after the cursor's key."""
    where = "w.tenant_id = $1 AND w.deleted_at IS NULL"
    args: list[object] = [tenant_id, limit, max_bytes]
    if after is not None:
        where += " AND (w.created_at, w.id) > ($4, $5)"
        args += [after[0], after[1]]
    sql = f"""
WITH candidates AS (
    SELECT w.created_at, w.id, octet_length(v.definition::text) AS size
    FROM {CURRENT} WHERE {where}
    ORDER BY w.created_at, w.id LIMIT $2 + 1
), {_fitted("created_at, id")}
SELECT {COLUMNS}, f.candidates
FROM fitted f JOIN ({CURRENT}) ON w.id = f.id
WHERE {_KEEP}
ORDER BY w.created_at, w.id
"""
    return _page(list(await pool.fetch(sql, *args)))


async def versions_page(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, workflow_id: uuid.UUID, limit: int, after: int, max_bytes: int
) -> tuple[int, Page]:
    """The workflow's current version number, and its versions after ``after`` in ascending order (404 if none)."""
    current = int((await get(pool, tenant_id, workflow_id))["current_version"])
    sql = f"""
WITH candidates AS (
    SELECT version, octet_length(definition::text) AS size
    FROM workflow_versions WHERE workflow_id = $1 AND version > $4
    ORDER BY version LIMIT $2 + 1
), {_fitted("version")}
SELECT v.version, v.definition, v.created_at, f.candidates
FROM fitted f JOIN workflow_versions v ON v.workflow_id = $1 AND v.version = f.version
WHERE {_KEEP}
ORDER BY v.version
"""
    return current, _page(list(await pool.fetch(sql, workflow_id, limit, max_bytes, after)))
