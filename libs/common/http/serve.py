"""Serve an aiohttp app until SIGTERM, then drain in the documented order (:mod:`libs.common.kit` runs it).

1. SIGTERM or SIGINT sets ``app[SHUTTING_DOWN]``: readiness answers 503 and
   background loops stop taking new work.
2. After ``drain_delay`` (time for a load balancer to notice), the listener
   closes and requests in flight finish, up to the grace period.
3. ``cleanup_ctx`` runs the kit's drain (:class:`libs.common.kit.Kit`): workers
   finish or release their work, loops stop, NATS drains, the pool closes.

``/metrics`` is served by a second, tiny app on ``settings.metrics_port`` (0:
none), started with the main listener and closed after it, so the last
scrape of a draining process still answers.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any

from aiohttp import web

from libs.common.http.health import metrics_app
from libs.common.http.keys import SHUTTING_DOWN
from libs.common.settings import HttpSettings

log = logging.getLogger(__name__)

# Limits that protect against slow or oversized requests (slowloris).
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
KEEPALIVE_TIMEOUT = 75.0


async def serve(app: web.Application, settings: HttpSettings, *, drain_delay: float = 0.0) -> None:
    # Both listeners: no signal handling or access log of aiohttp's own, and the same request-size limits.
    common: dict[str, Any] = {
        "handle_signals": False,
        "access_log": None,
        "max_line_size": MAX_LINE_SIZE,
        "max_field_size": MAX_FIELD_SIZE,
    }
    runner = web.AppRunner(
        app, shutdown_timeout=settings.shutdown_grace_seconds, keepalive_timeout=KEEPALIVE_TIMEOUT, **common
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, reuse_address=True)
    metrics_runner = web.AppRunner(metrics_app(app), shutdown_timeout=1.0, **common)
    stop = app[SHUTTING_DOWN]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await site.start()
        if settings.metrics_port:
            await metrics_runner.setup()
            await web.TCPSite(metrics_runner, settings.host, settings.metrics_port, reuse_address=True).start()
        # Everything built so far (modules, settings, pools) lives as long as the process: keep it
        # out of the garbage collector's generations, so collections only walk per-request objects.
        gc.freeze()
        log.info(
            "listening",
            extra={"host": settings.host, "port": settings.port, "metrics_port": settings.metrics_port or None},
        )
        await stop.wait()
        log.info("shutdown requested; draining")
        if drain_delay > 0:
            await asyncio.sleep(drain_delay)
    finally:
        await runner.cleanup()
        await metrics_runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("stopped")
