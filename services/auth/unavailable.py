"""Postgres being unreachable is a 503 with ``Retry-After``, not a 500."""

from __future__ import annotations

import logging

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from libs.common.http.errors import ServiceUnavailable

log = logging.getLogger(__name__)

UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
    TimeoutError,
)


@web.middleware
async def database_unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UNAVAILABLE as exc:
        log.warning("database unavailable", extra={"path": request.path, "error": type(exc).__name__})
        raise ServiceUnavailable("the service is temporarily unavailable; retry later", retry_after=2) from exc
