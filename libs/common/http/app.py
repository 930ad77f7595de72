"""The base aiohttp application every service starts from."""

from __future__ import annotations

import asyncio

from aiohttp import web

from libs.common.http.health import add_health_routes
from libs.common.http.keys import METRICS, READINESS_CHECKS, SHUTTING_DOWN
from libs.common.http.metrics import Metrics
from libs.common.http.middleware import envelope_middleware

DEFAULT_MAX_BODY = 1024 * 1024


def base_app(service: str, *, client_max_size: int = DEFAULT_MAX_BODY) -> web.Application:
    """An app with the envelope middleware, health routes and a metrics registry."""
    app = web.Application(middlewares=[envelope_middleware], client_max_size=client_max_size)
    app[METRICS] = Metrics(service)
    app[SHUTTING_DOWN] = asyncio.Event()
    app[READINESS_CHECKS] = {}
    add_health_routes(app)
    return app
