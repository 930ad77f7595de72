"""``/dev/echo``: a local target for workflows, in development mode only (``IPAAS_DEV_MODE=true``).

Any method; the answer (200, the usual envelope) holds the request as the gateway received it:
method, path, query, the headers a receiver would look at (``Idempotency-Key``, ``Content-Type``,
``User-Agent``, ``traceparent``, ...; never ``Authorization`` or ``Cookie``) and the body (parsed
when it is JSON, else as text).  ``make up`` runs with development mode, so its quick start can run
an ``http_request`` workflow against it on a machine without internet.  Without development mode
the route does not exist (404), and it is never part of the public API (``/openapi.json``).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from libs.common.http.envelope import ok
from services.gateway.settings import GatewaySettings

PATH = "/dev/echo"
HIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


async def echo(request: web.Request) -> web.Response:
    raw = await request.read()  # bounded by IPAAS_GATEWAY_MAX_BODY_BYTES (the app's client_max_size)
    text = raw.decode("utf-8", "replace")
    body: Any
    try:
        body = json.loads(text) if raw else None
    except ValueError:
        body = text
    headers = {str(k): v for k, v in request.headers.items() if k.lower() not in HIDDEN_HEADERS}  # istr keys
    return ok(
        {"method": request.method, "path": request.path, "query": dict(request.query), "headers": headers, "body": body}
    )


def add_routes(app: web.Application, settings: GatewaySettings) -> None:
    if settings.dev_mode:
        app.router.add_route("*", PATH, echo)
