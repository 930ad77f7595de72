"""Forward auth's public routes (:data:`FORWARDED`: register, login, logout, logout-all, credentials, the JWKS) to auth.

Only the routes auth serves are forwarded, each with its method, so the
gateway's router, auth's router and the OpenAPI document list the same
operations (a unit test compares them); anything else under ``/api/auth/``
or ``/api/credentials`` is the gateway's own 404 or 405.

The status, headers and body come back as auth sent them, streamed (auth's
own 503 with ``Retry-After``, while its Postgres is away, passes through).
Auth unreachable or slow gives a 503 envelope with ``Retry-After``.

What goes to auth is decided here, not by a URL library downstream:

- The path must stay under the prefix its route matched.  A dot segment
  (``.``, ``..``), in clear or percent-encoded, or an encoded slash,
  backslash or NUL in any segment, is refused with 400 ``invalid_path``:
  ``/api/auth/../../metrics`` would otherwise be normalised into auth's
  ``/metrics`` (or its internal routes) by the client that forwards it.  The
  path that passed is sent exactly as received (no normalisation).
- ``X-Forwarded-For`` carries one address: the client, as the gateway sees
  it behind its own trusted proxies (``IPAAS_GATEWAY_TRUSTED_PROXIES``).  What
  the client sent in it, and in ``Forwarded`` / ``X-Real-IP``, is dropped, so
  auth (which trusts the gateway) rate-limits the real client.
- The trace context sent on is the gateway's own span's, never the caller's.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from opentelemetry import propagate
from yarl import URL

from libs.common.http.client_ip import client_address
from libs.common.http.errors import BadRequest, ServiceUnavailable
from libs.common.http.keys import REQUEST_ID
from services.gateway.body import read_raw
from services.gateway.keys import HTTP, SETTINGS, TRUSTED_PROXIES

log = logging.getLogger(__name__)

NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        # Set by the gateway itself: the client's address and the trace context.
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "traceparent",
        "tracestate",
        "baggage",
    }
)
# Response headers the gateway sets itself.
_OWN_RESPONSE_HEADERS = NOT_FORWARDED | {"x-request-id", "server", "date", "content-encoding"}
_BAD_IN_SEGMENT = ("/", "\\", "\x00")


def checked_path(request: web.Request) -> str:
    """The raw (still encoded) path, if no segment could move it elsewhere once decoded."""
    raw = request.rel_url.raw_path
    for segment in raw.split("/"):
        decoded = unquote(segment)
        if decoded in (".", "..") or any(c in decoded for c in _BAD_IN_SEGMENT):
            log.warning("forwarding refused: path escapes its prefix", extra={"path": raw[:256]})
            raise BadRequest("the path may not hold dot segments or encoded separators", code="invalid_path")
    return raw


async def forward(request: web.Request) -> web.StreamResponse:
    s = request.app[SETTINGS]
    path = checked_path(request)
    body = await read_raw(request, s.max_body_bytes, s.body_read_timeout_seconds) if request.can_read_body else None
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED)
    headers["X-Forwarded-For"] = client_address(request, request.app[TRUSTED_PROXIES])
    headers["X-Request-Id"] = request[REQUEST_ID]
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    headers.update(carrier)
    base = URL(s.auth_url)
    url = URL.build(
        scheme=base.scheme,
        authority=base.raw_authority,
        path=base.raw_path.rstrip("/") + path,
        query_string=request.rel_url.raw_query_string,
        encoded=True,
    )
    timeout = aiohttp.ClientTimeout(total=s.auth_timeout_seconds)
    try:
        async with request.app[HTTP].request(
            request.method,
            url,
            headers=headers,
            data=body,
            timeout=timeout,
            allow_redirects=False,
            auto_decompress=False,
        ) as upstream:
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
        raise ServiceUnavailable(
            "the auth service is unavailable; retry later", retry_after=s.retry_after_seconds
        ) from exc


# (method, path) of every route auth serves through the gateway, as auth's router spells it.
FORWARDED: tuple[tuple[str, str], ...] = (
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/logout"),
    ("POST", "/api/auth/logout-all"),
    ("POST", "/api/credentials"),
    ("GET", "/api/credentials"),
    ("DELETE", "/api/credentials/{credential_id}"),
    ("POST", "/api/keys"),
    ("GET", "/api/keys"),
    ("DELETE", "/api/keys/{key_id}"),
    ("GET", "/.well-known/jwks.json"),
)


def add_routes(app: web.Application) -> None:
    for method, path in FORWARDED:
        if method == "GET":
            app.router.add_get(path, forward)  # and HEAD, as auth serves it
        else:
            app.router.add_route(method, path, forward)
