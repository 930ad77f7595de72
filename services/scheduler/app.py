"""The scheduler's aiohttp app: health, readiness, metrics, and the runtime's lifetime.

SIGTERM starts the runtime's drain at once (not only when the HTTP server has
closed), so the replica stops starting slots as soon as readiness turns 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from aiohttp import web

from libs.common.bus import Bus
from libs.common.db import create_pool
from libs.common.http.app import base_app
from libs.common.http.keys import METRICS, READINESS_CHECKS, SHUTTING_DOWN
from services.scheduler.clock import SystemClock
from services.scheduler.runtime import SchedulerRuntime
from services.scheduler.settings import SchedulerSettings

SETTINGS = web.AppKey("scheduler_settings", SchedulerSettings)
RUNTIME = web.AppKey("scheduler_runtime", SchedulerRuntime)


async def _runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(settings.db)
    bus = await Bus.connect(settings.nats, name="scheduler", inbox_prefix=settings.scheduler.nats_inbox_prefix)
    runtime = SchedulerRuntime(bus, pool, SystemClock(), settings.scheduler, app[METRICS].registry)
    app[RUNTIME] = runtime

    async def ready() -> bool:
        return runtime.ready

    app[READINESS_CHECKS]["scheduler"] = ready
    await runtime.start()

    async def freeze_after_load() -> None:
        # The schedules loaded at start live as long as the process: keep them out of the
        # garbage collector's generations, so a collection never walks ten thousand of them.
        await runtime.sync.loaded.wait()
        gc.freeze()

    freezer = asyncio.create_task(freeze_after_load(), name="scheduler-gc-freeze")

    async def stop_on_signal() -> None:
        await app[SHUTTING_DOWN].wait()
        await runtime.stop()

    watcher = asyncio.create_task(stop_on_signal(), name="scheduler-sigterm")
    try:
        yield
    finally:
        await runtime.stop()
        freezer.cancel()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await bus.drain()
        await pool.close()


def build_app(settings: SchedulerSettings) -> web.Application:
    app = base_app("scheduler")
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_runtime_ctx)
    return app
