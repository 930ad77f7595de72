"""Forward ``/api/auth/*``, ``/api/credentials*`` and ``/.well-known/jwks.json`` to auth.

The status, headers and body come back as auth sent them, streamed (auth's
own 503 with ``Retry-After``, while its Postgres is away, passes through).
Auth unreachable or slow gives a 503 envelope with ``Retry-After``.  The caller's
address is passed on in ``X-Forwarded-For`` (auth rate-limits logins by it).
"""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from libs.common.http.errors import ServiceUnavailable
from libs.common.http.keys import REQUEST_ID
from services.gateway.body import read_raw
from services.gateway.keys import HTTP, SETTINGS

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length", "x-forwarded-for",
})
# Response headers the gateway sets itself.
_OWN_RESPONSE_HEADERS = HOP_BY_HOP | {"x-request-id", "server", "date", "content-encoding"}


async def forward(request: web.Request) -> web.StreamResponse:
    s = request.app[SETTINGS]
    body = await read_raw(request, s.max_body_bytes, s.body_read_timeout_seconds) if request.can_read_body else None
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
    peer = request.remote or ""
    previous = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{previous}, {peer}" if previous else peer
    headers["X-Request-Id"] = request[REQUEST_ID]
    url = s.auth_url.rstrip("/") + str(request.rel_url)
    timeout = aiohttp.ClientTimeout(total=s.auth_timeout_seconds)
    try:
        async with request.app[HTTP].request(request.method, url, headers=headers, data=body, timeout=timeout,
                                             allow_redirects=False, auto_decompress=False) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _OWN_RESPONSE_HEADERS:
                    response.headers.add(key, value)
            if "Content-Encoding" in upstream.headers:
                response.headers["Content-Encoding"] = upstream.headers["Content-Encoding"]
            response.headers["X-Request-Id"] = request[REQUEST_ID]
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await response.write(chunk)
            await response.write_eof()
            return response
    except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        log.warning("auth unavailable", extra={"path": request.path, "error": type(exc).__name__})
        raise ServiceUnavailable("the auth service is unavailable; retry later",
                                 retry_after=s.retry_after_seconds) from exc


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/auth/register", forward)
    r.add_post("/api/auth/login", forward)
    r.add_route("*", "/api/auth/{tail:.+}", forward)
    r.add_route("*", "/api/credentials", forward)
    r.add_route("*", "/api/credentials/{tail:.+}", forward)
    r.add_get("/.well-known/jwks.json", forward)
