"""The base aiohttp application every service starts from."""

from __future__ import annotations

import asyncio

from aiohttp import web

from libs.common.http.health import add_health_routes
from libs.common.http.keys import DEFAULT_RETRY_AFTER, METRICS, READINESS_CHECKS, RETRY_AFTER, SHUTTING_DOWN
from libs.common.http.metrics import Metrics
from libs.common.http.middleware import envelope_middleware

DEFAULT_MAX_BODY = 1024 * 1024


def base_app(service: str, *, client_max_size: int = DEFAULT_MAX_BODY) -> web.Application:
    """An app with the envelope middleware, health routes and a metrics registry."""
    app = web.Application(middlewares=[envelope_middleware], client_max_size=client_max_size)
    app[METRICS] = Metrics(service)
    app[SHUTTING_DOWN] = asyncio.Event()
    app[READINESS_CHECKS] = {}
    app[RETRY_AFTER] = DEFAULT_RETRY_AFTER
    add_health_routes(app)
    return app
