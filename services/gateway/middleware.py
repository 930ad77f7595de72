"""The gateway's middlewares: a server span per request, and bearer-token checks on ``/api/*``.

Trace context from the internet is not trusted by default: an inbound
``traceparent`` would let any client choose the trace id (and sampling flag)
of our spans, join its requests to someone else's trace, or flood one trace.
Unless ``IPAAS_GATEWAY_TRUST_TRACE_CONTEXT=true``, each request starts a new
trace and the inbound context, when valid, is kept as a span link, so the
caller's trace can still be followed; inbound baggage is dropped.

A token is refused with 401 and the verifier's code; when revocations
cannot be checked (the list from auth is missing or too old) the answer is
503 ``revocations_unavailable`` with ``Retry-After``, never an acceptance.

A bearer credential starting ``ipk_`` is an API key (:mod:`services.gateway.api_keys`):
unknown or revoked is 401 ``invalid_api_key``; a key without the route's
scope (:mod:`services.gateway.scopes`) is 403 ``insufficient_scope``; a key
list too old to trust is 503 ``api_keys_unavailable``.

``/hooks/*`` takes no token and skips both middlewares (:func:`libs.common.http.middleware.direct`):
:func:`hook_span` wraps its handler in the same SERVER span, started only when spans are
recorded (something exports them) or a trusted inbound ``traceparent`` must continue; otherwise
the event's PRODUCER span is the root of its trace and its ``traceparent`` is the one answered.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import context, propagate, trace
from opentelemetry.trace import Link, SpanKind

from libs.common.auth import api_keys
from libs.common.auth.jwt_verify import TokenError, bearer_token
from libs.common.auth.revocations import RevocationsUnavailable
from libs.common.http.errors import Forbidden, ServiceUnavailable, Unauthorized
from libs.common.telemetry import ActiveSpan, direct_tracer, spans_recorded
from services.gateway.api_keys import ApiKeysUnavailable
from services.gateway.keys import API_KEYS, CLAIMS, SETTINGS, TENANT, VERIFIER
from services.gateway.scopes import required_scope

# Routes under /api/ that take no token.
PUBLIC_API_PATHS = frozenset({"/api/auth/register", "/api/auth/login"})
TRACER_NAME = "services.gateway"
LINK_ATTRIBUTES = {"ipaas.link.reason": "inbound traceparent (untrusted)"}
EMPTY = context.Context()
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class RevocationsStale(ServiceUnavailable):
    code = "revocations_unavailable"


class ApiKeysStale(ServiceUnavailable):
    code = "api_keys_unavailable"


def _parent_and_links(request: web.Request, trusted: bool) -> tuple[context.Context, list[Link]]:
    if "traceparent" not in request.headers:
        return EMPTY, []  # nothing inbound (most webhooks): a new root, without parsing any headers
    inbound = propagate.extract(request.headers)
    if trusted:
        return inbound, []
    span_context = trace.get_current_span(inbound).get_span_context()
    links = [Link(span_context, LINK_ATTRIBUTES)] if span_context.is_valid else []
    return EMPTY, links  # an empty context: a new root, no inbound baggage


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A SERVER span (a new trace, or the caller's when trusted); its context reaches NATS headers."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    method = request.method
    parent, links = _parent_and_links(request, request.app[SETTINGS].trust_trace_context)
    span = direct_tracer(TRACER_NAME).start_span(
        f"{method} {route}",
        context=parent,
        kind=SpanKind.SERVER,
        links=links,
        attributes={"http.request.method": method, "http.route": route},
    )
    with ActiveSpan(span):
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        return response


def hook_span(handler: Handler) -> Handler:
    """``handler`` in the SERVER span of :func:`tracing_middleware`, when the span can matter."""

    async def traced(request: web.Request) -> web.StreamResponse:
        if spans_recorded() or ("traceparent" in request.headers and request.app[SETTINGS].trust_trace_context):
            return await tracing_middleware(request, handler)
        return await handler(request)

    return traced


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not path.startswith("/api/") or path in PUBLIC_API_PATHS or request.method == "OPTIONS":
        return await handler(request)
    token = bearer_token(request.headers)
    if not token:
        raise Unauthorized("a bearer token is required", code="missing_token", headers={"WWW-Authenticate": "Bearer"})
    if api_keys.is_api_key(token):
        await _check_api_key(request, token)
        return await handler(request)
    try:
        request[CLAIMS] = claims = await request.app[VERIFIER].verify(token)
    except TokenError as exc:
        raise Unauthorized(exc.message, code=exc.code, headers=INVALID_TOKEN) from exc
    except RevocationsUnavailable as exc:
        raise RevocationsStale(
            "token revocations cannot be checked now; retry later",
            retry_after=request.app[SETTINGS].retry_after_seconds,
        ) from exc
    request[TENANT] = claims.tenant_id
    return await handler(request)


async def _check_api_key(request: web.Request, key: str) -> None:
    scope = required_scope(request.method, request.path)
    try:
        entry = await request.app[API_KEYS].lookup(key)
    except ApiKeysUnavailable as exc:
        raise ApiKeysStale(
            "API keys cannot be checked now; retry later", retry_after=request.app[SETTINGS].retry_after_seconds
        ) from exc
    if entry is None:
        raise Unauthorized("unknown or revoked API key", code="invalid_api_key", headers=INVALID_TOKEN)
    if scope is None or scope.value not in entry.scopes:
        needed = scope.value if scope is not None else "none: use a user's token"
        raise Forbidden(
            f"this API key may not do this (scope needed: {needed})",
            code="insufficient_scope",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
        )
    request[TENANT] = entry.tenant_id
