"""One page of a tenant's list (credentials, API keys): ``limit`` (1 to
``IPAAS_AUTH_CREDENTIALS_PAGE_MAX``) and ``cursor`` as :class:`PageQuery` reads them (422 naming
a bad one); rows fetched with ``limit + 1``, ordered by ``(created_at, id)``;
``meta.next_cursor`` when more follow, no meta on the last page."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from aiohttp import web

from libs.common.http.envelope import ok
from libs.common.http.query import parse_query
from libs.common.models.api import PageMeta
from libs.common.models.auth import CREDENTIALS_PAGE_DEFAULT
from libs.common.models.queries import PAGE_MAX, PageQuery
from services.auth.keys import POOL, SETTINGS


async def tenant_page(
    request: web.Request, table: str, columns: str, tenant_id: uuid.UUID, render: Callable[[asyncpg.Record], Any]
) -> web.Response:
    """``columns`` of ``table``'s rows of ``tenant_id``, one page (``table`` and ``columns`` are constants)."""
    query = parse_query(request, PageQuery, context={PAGE_MAX: request.app[SETTINGS].credentials_page_max})
    limit = query.limit or CREDENTIALS_PAGE_DEFAULT
    after = query.after
    rows = await request.app[POOL].fetch(
        f"""SELECT {columns} FROM {table}
            WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
            ORDER BY created_at, id LIMIT $4""",
        tenant_id,
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
    )
    if len(rows) <= limit:
        return ok([render(r) for r in rows])  # the last page: no meta
    rows = rows[:limit]
    return ok([render(r) for r in rows], meta=PageMeta.after(rows, more=True))
