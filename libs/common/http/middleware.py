"""Request id, error envelope and request metrics, as aiohttp middlewares."""

from __future__ import annotations

import logging
import os
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from libs.common.http.envelope import error_response
from libs.common.http.errors import ApiError
from libs.common.http.keys import METRICS, REQUEST_ID

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if 0 < len(incoming) <= 128 and incoming.isascii() and incoming.isprintable():
        return incoming
    return os.urandom(16).hex()  # 32 hex characters, like a uuid4 hex, for less work


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 408: "request_timeout", 409: "conflict", 411: "length_required",
    413: "payload_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
    422: "validation_error", 429: "rate_limited", 431: "headers_too_large",
    503: "service_unavailable",
}


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as the envelope; nothing else (no trace, no SQL) reaches a client."""
    rid = _request_id(request)
    request[REQUEST_ID] = rid
    started = time.perf_counter()
    status = 500
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
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "request_id": rid})
        status = 500
        response = error_response(500, "internal_error", "internal error")
    finally:
        metrics = request.app.get(METRICS)
        if metrics is not None:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            metrics.observe_request(request.method, name, status, time.perf_counter() - started)
    response.headers[REQUEST_ID_HEADER] = rid
    return response
