"""The service kit: how every service starts, reports readiness and stops, written once.

A service declares what it needs (a Postgres pool, the bus, JetStream streams) and what it
runs (a ``start`` function that builds its parts on a :class:`Kit`); :func:`service_app`
turns that into an aiohttp app, :func:`main` runs it as a process.  Readiness has fixed
check names (``postgres``, ``nats``, ``nats_streams``) plus the service's own.

Drain, on SIGTERM (:func:`libs.common.http.serve.serve` sets ``SHUTTING_DOWN``) or clean-up,
always in this order: stop taking new work (``on_sigterm``, at the signal); finish what is in
flight (``on_drain``, each step bounded by a grace); stop the loops (each gets its ``wait``,
then is cancelled); release the service's resources (``on_close``); drain the bus; close the
pool; flush telemetry (:func:`main`, once the app is gone).  A failing step is logged and
the drain goes on.  docs/architecture.md ("The service kit") has the details.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

import asyncpg
import uvloop
from aiohttp import web

from libs.common.bus import Bus
from libs.common.bus.provision import Needs, ProvisionGate
from libs.common.db import create_pool
from libs.common.http.app import DEFAULT_MAX_BODY, base_app
from libs.common.http.keys import READINESS_CHECKS, SHUTTING_DOWN
from libs.common.http.serve import serve
from libs.common.logs import configure_logging
from libs.common.settings import ServiceSettings
from libs.common.tasks import cancel_until_done
from libs.common.telemetry import setup_tracing, shutdown_tracing

log = logging.getLogger(__name__)

CHECK_POSTGRES = "postgres"
CHECK_NATS = "nats"
CHECK_STREAMS = "nats_streams"

Step = Callable[[], Awaitable[None] | None]
S = TypeVar("S", bound=ServiceSettings)


async def _call(step: Step) -> None:
    """One drain step; a failing step is logged and the drain goes on."""
    try:
        result = step()
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.warning("a drain step failed", extra={"step": getattr(step, "__qualname__", repr(step))}, exc_info=True)


class Kit(Generic[S]):
    """What a service's ``start`` receives: its settings and app, the pool and bus it asked for, the drain hooks."""

    def __init__(self, app: web.Application, settings: S) -> None:
        self.app = app
        self.settings = settings
        self.name = settings.service
        self._pool: asyncpg.Pool | None = None
        self._bus: Bus | None = None
        self.gate: ProvisionGate | None = None
        self._sigterm: list[Step] = []
        self._drain: list[tuple[Step, float]] = []
        self._close: list[Step] = []
        self._loops: list[tuple[asyncio.Task[Any], Callable[[], None] | None, float]] = []

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "the service did not ask for a pool"
        return self._pool

    @property
    def bus(self) -> Bus:
        assert self._bus is not None, "the service did not ask for the bus"
        return self._bus

    def check(self, name: str, probe: Callable[[], Awaitable[bool]]) -> None:
        """A readiness check of the service's own, next to the fixed ones."""
        self.app[READINESS_CHECKS][name] = probe

    def task(
        self, work: Coroutine[Any, Any, Any], *, name: str, stop: Callable[[], None] | None = None, wait: float = 0.0
    ) -> asyncio.Task[Any]:
        """A background loop: at drain ``stop`` is called, the loop gets ``wait`` seconds to end, then is cancelled."""
        task = asyncio.create_task(work, name=name)
        self._loops.append((task, stop, wait))
        return task

    def every(self, seconds: float, work: Callable[[], Awaitable[None]], *, name: str) -> None:
        """A loop running ``work`` every ``seconds`` until the drain; a failed round is logged, the next one comes."""

        async def loop() -> None:
            stop = self.app[SHUTTING_DOWN]
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=seconds)
                    return
                try:
                    await work()
                except Exception:
                    log.warning(f"{name} failed; next round in {seconds:g} s", exc_info=True)

        self.task(loop(), name=name)

    def on_sigterm(self, step: Step) -> None:
        """Stop taking new work: run as soon as SIGTERM arrives (or at clean-up, whichever is first)."""
        self._sigterm.append(step)

    def on_drain(self, step: Step, *, grace: float | None = None) -> None:
        """Finish (or release) the work in flight, before the loops stop.

        Bounded by ``grace`` seconds (default ``IPAAS_HTTP_SHUTDOWN_GRACE_SECONDS``): past it the
        step is cancelled, with a warning, and the drain goes on.
        """
        self._drain.append((step, self.settings.http.shutdown_grace_seconds if grace is None else grace))

    def on_close(self, step: Step) -> None:
        """Release a resource of the service's own; runs after the loops, before the bus and the pool."""
        self._close.append(step)

    async def open(self, *, pool: bool, bus: bool, streams: Needs | None) -> None:
        settings = self.settings
        checks = self.app[READINESS_CHECKS]
        if pool:
            self._pool = opened = await create_pool(settings.db)

            async def postgres_ready() -> bool:
                return bool(await opened.fetchval("SELECT 1"))

            checks[CHECK_POSTGRES] = postgres_ready
        if bus:
            name = f"{self.name}:{settings.http.port}"
            self._bus = connected = await Bus.connect(settings.nats, name=name, inbox_prefix=settings.nats_inbox_prefix)

            async def nats_ready() -> bool:
                return connected.is_connected

            checks[CHECK_NATS] = nats_ready
        if streams is not None:
            # Provisioned by the provisioning step (or here, with IPAAS_NATS_PROVISION=true); until then not ready.
            self.gate = ProvisionGate(self.bus, streams)
            await self.gate.start()
            checks[CHECK_STREAMS] = self.gate.ready

    async def watch(self) -> None:
        """Run the ``on_sigterm`` steps once ``SHUTTING_DOWN`` is set."""
        await self.app[SHUTTING_DOWN].wait()
        for step in self._sigterm:
            await _call(step)

    async def drain(self, watcher: asyncio.Task[None]) -> None:
        self.app[SHUTTING_DOWN].set()
        await watcher
        if self.gate is not None:
            await self.gate.stop()
        for step, grace in self._drain:
            try:
                async with asyncio.timeout(grace):
                    await _call(step)
            except TimeoutError:
                log.warning("a drain step went past its grace", extra={"grace_s": grace})
        await self._stop_loops()
        for step in self._close:
            await _call(step)
        if self._bus is not None:
            await self._bus.drain()
        if self._pool is not None:
            await self._pool.close()

    async def _stop_loops(self) -> None:
        for _, stop, _ in self._loops:
            if stop is not None:
                stop()
        quick = [task for task, _, wait in self._loops if wait <= 0]
        waits = [asyncio.wait({task}, timeout=wait) for task, _, wait in self._loops if wait > 0]
        # Loops that need no time are cancelled while the others finish their pass.
        left, *_ = await asyncio.gather(cancel_until_done(quick, every=0.5, rounds=4), *waits)
        left |= await cancel_until_done((task for task, _, _ in self._loops), every=0.5, rounds=4)
        if left:
            log.warning("background tasks still running at shutdown", extra={"tasks": len(left)})


def service_app(
    settings: S,
    start: Callable[[Kit[S]], Awaitable[None]],
    *,
    pool: bool = True,
    bus: bool = True,
    streams: Needs | None = None,
    client_max_size: int = DEFAULT_MAX_BODY,
) -> web.Application:
    """The service's app (health, metrics, envelope) whose lifetime opens what it needs, runs ``start``, and drains."""
    name = settings.service
    setup_tracing(name)  # idempotent; spans carry trace ids into NATS headers, rows and responses
    app = base_app(name, client_max_size=client_max_size)
    kit = Kit(app, settings)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        watcher = asyncio.create_task(kit.watch(), name=f"{name}-sigterm")
        try:
            await kit.open(pool=pool, bus=bus, streams=streams)
            await start(kit)
            log.info(f"{name} started")
            yield
        finally:
            await kit.drain(watcher)

    app.cleanup_ctx.append(lifetime)
    return app


def main(
    settings: ServiceSettings,
    factory: Callable[[], web.Application | Awaitable[web.Application]],
    *,
    fatal: tuple[type[Exception], ...] = (),
    drain_delay: float = 0.0,
) -> int:
    """A service process: JSON logs, uvloop, the app served until SIGTERM, then telemetry flushed.

    An error of a ``fatal`` type (a configuration the service cannot start with) is logged
    and the process exits 2.
    """
    name = settings.service
    configure_logging(name, settings.log_level, settings.trace_url_template)
    uvloop.install()

    async def run() -> None:
        app = factory()
        await serve(app if isinstance(app, web.Application) else await app, settings.http, drain_delay=drain_delay)

    try:
        asyncio.run(run())
    except fatal as exc:
        log.error(f"{name} cannot start", extra={"reason": str(exc)})
        return 2
    finally:
        shutdown_tracing()
    return 0
