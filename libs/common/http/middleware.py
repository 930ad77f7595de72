"""Request id, error envelope and request metrics, as aiohttp middlewares.

Once SIGTERM has arrived (``SHUTTING_DOWN``), every answer also says
``Connection: close``: a client that goes on sending during the drain delay
moves to a new connection while the listener is still open, instead of
writing its next request onto a keep-alive connection that the server closes
with its listener.  (A connection left idle through the whole delay can still
meet that close; HTTP clients retry such a request.)

A route handler marked with :func:`direct` is called by the envelope
middleware itself, past the app's other middlewares: it must do their work
itself where it needs any (the gateway's webhook route starts its own server
span and takes no bearer token).  Request id, error envelope, metrics and the
drain's ``Connection: close`` stay the same for it.
"""

from __future__ import annotations

import logging
import time
from random import getrandbits

from aiohttp import web
from aiohttp.typedefs import Handler

from libs.common.http.envelope import error_response
from libs.common.http.errors import ApiError
from libs.common.http.keys import DEFAULT_RETRY_AFTER, METRICS, REQUEST_ID, RETRY_AFTER, SHUTTING_DOWN
from libs.common.http.unavailable import DATABASE_UNAVAILABLE, SERVICE_UNAVAILABLE, unavailable_code

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
DIRECT_ATTRIBUTE = "_ipaas_direct"


def direct(handler: Handler) -> Handler:
    """Mark a route handler to run right inside the envelope middleware, skipping the others.

    The mark is on the function itself: every route it is added to is direct.
    """
    setattr(handler, DIRECT_ATTRIBUTE, True)
    return handler


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if 0 < len(incoming) <= 128 and incoming.isascii() and incoming.isprintable():
        return incoming
    return f"{getrandbits(128):032x}"  # 32 random hex characters, like a uuid4 hex, for less work


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    431: "headers_too_large",
    503: "service_unavailable",
}

_UNAVAILABLE_MESSAGES = {
    DATABASE_UNAVAILABLE: "the database is unavailable; retry later",
    SERVICE_UNAVAILABLE: "a dependency is unavailable; retry later",
}


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as the envelope; nothing else (no trace, no SQL) reaches a client.

    A dependency that cannot be reached (Postgres away, a connection refused,
    a timeout) is a 503 with ``Retry-After``, for every route, here and
    nowhere else: see :mod:`libs.common.http.unavailable`.
    """
    rid = _request_id(request)
    request[REQUEST_ID] = rid
    started = time.perf_counter()
    status = 500
    route_handler = request.match_info.handler
    if getattr(route_handler, DIRECT_ATTRIBUTE, False):
        handler = route_handler
    try:
        response = await handler(request)
        status = response.status
    except ApiError as exc:
        status = exc.status
        response = error_response(exc.status, exc.code, exc.message, details=exc.details, headers=exc.headers)
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        response = error_response(exc.status, code, exc.reason, headers=headers)
    except Exception as exc:  # noqa: BLE001 - the last resort: every error leaves as the envelope
        response = _unexpected(request, rid, exc)
        status = response.status
    finally:
        metrics = request.app.get(METRICS)
        if metrics is not None:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            metrics.observe_request(request.method, name, status, time.perf_counter() - started)
    response.headers[REQUEST_ID_HEADER] = rid
    draining = request.app.get(SHUTTING_DOWN)
    if draining is not None and draining.is_set():
        response.force_close()  # Connection: close, so the client does not send its next request here
    return response


def _unexpected(request: web.Request, rid: str, exc: Exception) -> web.Response:
    """503 with ``Retry-After`` for an unreachable dependency, else 500; never the exception's text."""
    unavailable = unavailable_code(exc)
    if unavailable is None:
        log.exception("unhandled error", extra={"path": request.path, "request_id": rid})
        return error_response(500, "internal_error", "internal error")
    # An outage, not a bug: no stack trace in the log, and the client is told when to come back.
    log.warning(
        "dependency unavailable",
        extra={"path": request.path, "request_id": rid, "code": unavailable, "error": type(exc).__name__},
    )
    retry_after = str(request.app.get(RETRY_AFTER, DEFAULT_RETRY_AFTER))
    return error_response(503, unavailable, _UNAVAILABLE_MESSAGES[unavailable], headers={"Retry-After": retry_after})
