"""The gateway's middlewares: a server span per request, and bearer-token checks on ``/api/*``."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import propagate
from opentelemetry.trace import SpanKind

from libs.common.auth.jwt_verify import TokenError
from libs.common.http.errors import Unauthorized
from libs.common.telemetry import ActiveSpan, direct_tracer
from services.gateway.keys import CLAIMS, VERIFIER

# Routes under /api/ that take no token.
PUBLIC_API_PATHS = frozenset({"/api/auth/register", "/api/auth/login"})
TRACER_NAME = "services.gateway"


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A SERVER span continuing the caller's ``traceparent``; its context reaches NATS headers."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    method = request.method
    span = direct_tracer(TRACER_NAME).start_span(
        f"{method} {route}", context=propagate.extract(request.headers), kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route},
    )
    with ActiveSpan(span):
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not path.startswith("/api/") or path in PUBLIC_API_PATHS or request.method == "OPTIONS":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required", code="missing_token",
                           headers={"WWW-Authenticate": "Bearer"})
    try:
        request[CLAIMS] = await request.app[VERIFIER].verify(token.strip())
    except TokenError as exc:
        raise Unauthorized(exc.message, code=exc.code,
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from exc
    return await handler(request)
