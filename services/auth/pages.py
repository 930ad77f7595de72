"""One page of a list answer (credentials, API keys): rows fetched with ``limit + 1``, ordered by
``(created_at, id)``; ``meta.next_cursor`` when more follow, no meta on the last page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from aiohttp import web

from libs.common.http.envelope import ok
from libs.common.models.api import PageMeta
from libs.common.models.queries import encode_cursor


def page_response(rows: Sequence[asyncpg.Record], limit: int, render: Callable[[asyncpg.Record], Any]) -> web.Response:
    if len(rows) <= limit:
        return ok([render(r) for r in rows])  # the last page: no meta
    rows = rows[:limit]
    meta = PageMeta(next_cursor=encode_cursor(rows[-1]["created_at"], rows[-1]["id"]))
    return ok([render(r) for r in rows], meta=meta.model_dump())
