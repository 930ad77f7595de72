"""``/health/live`` and ``/health/ready`` on every service's port, and ``/metrics`` on its own listener.

:func:`metrics_app` is a separate aiohttp app that only serves the main app's
registry; :func:`libs.common.http.serve.serve` runs it on ``metrics_port``.
The main app has no ``/metrics`` route, so nothing a client can reach through
the gateway (or through a path that a forwarder normalises) exposes metrics.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from libs.common.http.exemplars import render
from libs.common.http.keys import METRICS, READINESS_CHECKS, SHUTTING_DOWN
from libs.common.models.api import LiveOut, ReadyOut

log = logging.getLogger(__name__)


async def live(request: web.Request) -> web.Response:
    return web.json_response(LiveOut().model_dump())


async def ready(request: web.Request) -> web.Response:
    app = request.app
    if app[SHUTTING_DOWN].is_set():
        return web.json_response(ReadyOut(status="draining").model_dump(), status=503)
    results: dict[str, bool] = {}
    for name, check in app[READINESS_CHECKS].items():
        try:
            results[name] = bool(await asyncio.wait_for(check(), timeout=2.0))
        except Exception:
            log.debug("readiness check failed", extra={"check": name}, exc_info=True)
            results[name] = False
    healthy = all(results.values())
    answer = ReadyOut(status="ready" if healthy else "not_ready", checks=results)
    return web.json_response(answer.model_dump(), status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text, or OpenMetrics (with trace-id exemplars) when the scraper's ``Accept`` asks for it."""
    body, content_type = render(request.app[METRICS].registry, request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)


def metrics_app(app: web.Application) -> web.Application:
    """An app answering ``GET /metrics`` with ``app``'s registry, to run on the metrics port."""
    exposed = web.Application()
    exposed[METRICS] = app[METRICS]
    exposed.router.add_get("/metrics", metrics)
    return exposed
