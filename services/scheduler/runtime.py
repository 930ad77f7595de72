"""One scheduler replica's moving parts, started and stopped in the right order.

Start: subscribe to the change feed first (changes wait until the first load
is done, so none is missed), load every schedule from Postgres with catch-up,
then start the timer.  A periodic resync runs as a safety net.

Stop (SIGTERM): stop the feed and the resync, start no new slot, let the
slots already due be published, then write the progress, all within one
budget of ``drain_seconds``; due slots still unpublished then are abandoned
(logged, never claimed in progress) for another replica or the restart to
fire.  Calling :meth:`SchedulerRuntime.stop` again waits for the same stop.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from prometheus_client import CollectorRegistry

from libs.common.bus import Bus
from libs.common.bus.provision import Needs, ensure_needs
from libs.common.tasks import wait_at_most
from services.scheduler.changes import ChangeFeed
from services.scheduler.clock import Clock
from services.scheduler.engine import Engine
from services.scheduler.firing import Publisher
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.peers import Peers
from services.scheduler.progress import ProgressWriter
from services.scheduler.settings import SchedulerOptions
from services.scheduler.store import ScheduleStore
from services.scheduler.sync import ScheduleSync
from services.scheduler.tasks import cancel_and_wait
from services.scheduler.versions import VersionCheck

log = logging.getLogger(__name__)


class SchedulerRuntime:
    def __init__(
        self,
        bus: Bus,
        pool: asyncpg.Pool,
        clock: Clock,
        options: SchedulerOptions,
        registry: CollectorRegistry | None = None,
        *,
        inbox_prefix: str = "_INBOX_scheduler",
    ) -> None:
        self.options = options
        self.bus = bus
        self.metrics = SchedulerMetrics(registry if registry is not None else CollectorRegistry())
        self.store = ScheduleStore(pool, min_interval_seconds=options.schedule.min_interval_seconds)
        self.progress = ProgressWriter(self.store, retry_max_seconds=options.retry_max_seconds)
        self.publisher = Publisher(bus, clock, self.metrics)
        self.versions = VersionCheck(
            self.store,
            self.metrics,
            timeout_seconds=options.version_check_timeout_seconds,
            pause_seconds=options.retry_max_seconds,
            min_interval_seconds=options.schedule.min_interval_seconds,
        )
        self.peers = Peers(
            bus,
            f"{inbox_prefix}.replicas",
            heartbeat_seconds=options.peer_heartbeat_seconds,
            on_change=self.metrics.replicas.set,
        )
        self.engine = Engine(
            self.publisher, self.progress, self.versions, clock, self.metrics, options, owns=self.peers.owns
        )
        self.sync = ScheduleSync(self.store, self.engine, self.metrics)
        self._resync_now = asyncio.Event()  # a change failed to apply: resync now, not at the next interval
        self.feed = ChangeFeed(bus, self.sync.on_change, on_failure=self._resync_now.set)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self._stop_task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return (
            self.sync.loaded.is_set()
            and self.engine.running
            and self.feed.active
            and self.bus.is_connected
            and not self._stopped
        )

    async def start(self) -> None:
        """Begin in the background; :attr:`ready` turns true once schedules are loaded."""
        self.progress.start()
        self._tasks.append(asyncio.create_task(self._run(), name="scheduler-main"))

    async def _run(self) -> None:
        delay = 0.2
        while not self.feed.active:
            try:
                # Provisioned by the provisioning step (or here, with IPAAS_NATS_PROVISION=true).
                nats = self.bus.settings
                await ensure_needs(self.bus, Needs((nats.events_stream, nats.changes_stream)))
                if not self.peers.started:
                    await self.peers.start()
                await self.feed.start()
            except Exception as exc:  # noqa: BLE001 - NATS may not be ready yet; keep trying
                log.warning(
                    "subscribing to workflow changes failed; retrying",
                    extra={"error": type(exc).__name__, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.retry_max_seconds)
        await self._resync(startup=True)
        self.engine.start()
        while not self._stopped:
            await wait_at_most(self._resync_now, self.options.resync_interval_seconds)
            self._resync_now.clear()
            await self._resync(startup=False)

    async def _resync(self, *, startup: bool) -> None:
        delay = 0.2
        while not self._stopped:
            try:
                await self.sync.resync(startup=startup)
                self.metrics.resyncs.labels("ok").inc()
                return
            except Exception as exc:  # noqa: BLE001 - Postgres away, or a bad row: retry, keep firing
                self.metrics.resyncs.labels("failed").inc()
                log.warning(
                    "loading schedules failed; retrying", extra={"error": type(exc).__name__, "retry_in_s": delay}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.retry_max_seconds)

    async def stop(self) -> None:
        """Drain and stop (see the module docstring); safe to call more than once, or concurrently."""
        if self._stop_task is None:
            self._stop_task = asyncio.create_task(self._stop(), name="scheduler-stop")
        await asyncio.shield(self._stop_task)

    async def _stop(self) -> None:
        loop = asyncio.get_running_loop()
        budget = self.options.drain_seconds
        started = loop.time()
        deadline = started + budget
        self._stopped = True
        await self.feed.stop()
        await self.peers.stop()  # the others take this replica's workflows over within a few heartbeats
        await cancel_and_wait(self._tasks)
        # Publishing comes first; progress gets what is left, and at least a moment.
        report = await self.engine.stop(budget)
        flush = max(deadline - loop.time(), min(1.0, budget))
        written = await self.progress.stop(flush)
        fields = {
            "due_slots": report.due,
            "finished_while_draining": report.finished,
            "abandoned_slots": report.abandoned,
            "progress_written": written,
            "drain_s": round(loop.time() - started, 3),
        }
        if report.abandoned:
            log.warning(
                "scheduler stopped with due slots unpublished; another replica or the restart fires "
                "them (their progress was not saved)",
                extra=fields,
            )
        else:
            log.info("scheduler stopped", extra=fields)
