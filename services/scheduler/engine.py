"""The timer: a heap of next fire times, one loop, a few fire workers.

There is no task per schedule and no database access per tick.  The loop
pops every due entry, hands it to a fire worker (a fixed pool), and sleeps
until the next due time or until a change wakes it.  Each fire publishes an
``EventEnvelope`` whose ``Nats-Msg-Id`` is ``sched:<wf>:<version>:<slot>``, so
replicas (and a restarted replica) firing the same slot collapse into one
event in JetStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from services.scheduler.clock import Clock
from services.scheduler.firing import Publisher
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.progress import ProgressWriter
from services.scheduler.settings import SchedulerOptions
from services.scheduler.slots import SlotError, slot_iso, slots_between, to_slot
from services.scheduler.store import ScheduleSpec, SkippedSlot

log = logging.getLogger(__name__)

SKIP_REASON = ("missed: no scheduler replica could fire it on time (all down, or NATS unreachable); "
               "catchup=skip fires only the latest missed slot")


@dataclass(eq=False, slots=True)
class Entry:
    spec: ScheduleSpec
    last: int | None  # newest slot fired or accounted for
    pending: deque[int] = field(default_factory=deque)  # slots to fire, oldest first
    token: int = 0
    busy: bool = False
    backoff: float = 0.0


class Engine:
    def __init__(self, publisher: Publisher, progress: ProgressWriter, clock: Clock,
                 metrics: SchedulerMetrics, options: SchedulerOptions) -> None:
        self._publisher = publisher
        self._progress = progress
        self._clock = clock
        self._metrics = metrics
        self._opts = options
        self._entries: dict[uuid.UUID, Entry] = {}
        self._heap: list[tuple[float, int, uuid.UUID]] = []
        self._tokens = itertools.count(1)
        self._queue: asyncio.Queue[tuple[Entry, int]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    # ---- what is loaded -------------------------------------------------
    def workflow_ids(self) -> set[uuid.UUID]:
        return set(self._entries)

    def spec_of(self, workflow_id: uuid.UUID) -> ScheduleSpec | None:
        entry = self._entries.get(workflow_id)
        return entry.spec if entry is not None else None

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    def upsert(self, spec: ScheduleSpec, *, last_slot: int | None, catch_up: bool,
               changed_at: int | None = None) -> None:
        """Load or replace a schedule.

        ``catch_up`` (start-up): resume after the later of ``last_slot`` (saved
        progress) and ``changed_at`` (the workflow's last change: slots of a
        disabled period or of a replaced definition are not caught up), applying
        the workflow's catch-up policy to the slots missed since.  Otherwise (a
        live change): start at the next slot after now, and mark everything up to
        now as accounted for, so a later restart does not catch up a disabled period.

        Raises :class:`SlotError` (and loads nothing) if the slots cannot be computed.
        """
        old = self._entries.get(spec.workflow_id)
        if old is not None and old.spec.version == spec.version and old.spec.trigger == spec.trigger:
            return
        now = to_slot(self._clock.now())
        if catch_up and old is None:
            # Slots before the workflow's last change (an enable, an update) are not caught up.
            bounds = [t for t in (last_slot, None if changed_at is None else min(changed_at, now)) if t is not None]
            last = max(bounds) if bounds else None
        else:
            last = max(now, old.last or now) if old is not None else now
            self._progress.record(spec.workflow_id, last)
        entry = Entry(spec=spec, last=last)
        self._entries[spec.workflow_id] = entry
        try:
            self._plan(entry, now)
        except SlotError:
            del self._entries[spec.workflow_id]
            raise
        finally:
            self._metrics.loaded.set(len(self._entries))
        log.log(logging.DEBUG if catch_up else logging.INFO, "schedule loaded",
                extra={"workflow_id": str(spec.workflow_id), "version": spec.version,
                       "next_slot": slot_iso(entry.pending[0]) if entry.pending else None})

    def remove(self, workflow_id: uuid.UUID) -> None:
        if self._entries.pop(workflow_id, None) is not None:
            self._metrics.loaded.set(len(self._entries))
            log.info("schedule unloaded", extra={"workflow_id": str(workflow_id)})

    # ---- slot planning --------------------------------------------------
    def _plan(self, entry: Entry, now: int) -> None:
        if not entry.pending:
            self._collect_missed(entry, now)
        if not entry.pending:
            base = now if entry.last is None else max(entry.last, now)
            entry.pending.append(entry.spec.rule.next_after(base))
        self._push(entry, entry.pending[0])

    def _collect_missed(self, entry: Entry, now: int) -> None:
        """Queue (or record as skipped) the slots in ``(last, now]``, per the catch-up policy."""
        if entry.last is None or entry.last >= now:
            return
        spec = entry.spec
        window_start = now - self._opts.catchup_window_seconds
        if entry.last < window_start:
            log.warning("missed slots older than the catch-up window are not caught up",
                        extra={"workflow_id": str(spec.workflow_id), "from": slot_iso(entry.last),
                               "until": slot_iso(window_start)})
        missed, dropped, complete = slots_between(spec.rule, max(entry.last, window_start), now,
                                                  self._opts.max_catchup_slots)
        if dropped or not complete:
            self._metrics.skips.labels("catchup_limit").inc(dropped)
            log.warning("more missed slots than max_catchup_slots; the oldest are not caught up",
                        extra={"workflow_id": str(spec.workflow_id), "dropped": dropped,
                               "dropped_is_exact": complete})
        if len(missed) <= 1 or spec.trigger.catchup == "all":
            entry.pending.extend(missed)
            return
        latest = missed[-1]
        recent = now - self._opts.misfire_grace_seconds
        fire = [s for s in missed if s == latest or s >= recent]
        skipped = [s for s in missed if s != latest and s < recent]
        entry.pending.extend(fire)
        if skipped:
            self._progress.add_skipped([self._skipped_row(spec, s) for s in skipped])
            self._progress.record(spec.workflow_id, skipped[-1])
            self._metrics.skips.labels("catchup_skip").inc(len(skipped))
            log.info("missed slots recorded as skipped",
                     extra={"workflow_id": str(spec.workflow_id), "skipped": len(skipped),
                            "firing": [slot_iso(s) for s in fire]})

    def _skipped_row(self, spec: ScheduleSpec, slot: int) -> SkippedSlot:
        event_id = self._publisher.event_id(spec, slot)
        return SkippedSlot(event_id, spec.tenant_id, spec.workflow_id, spec.version, slot, SKIP_REASON)

    def _push(self, entry: Entry, due: float) -> None:
        entry.token = next(self._tokens)
        heapq.heappush(self._heap, (due, entry.token, entry.spec.workflow_id))
        if len(self._heap) > 2 * len(self._entries) + 1024:
            self._compact()
        if due <= self._heap[0][0]:
            self._wake.set()

    def _compact(self) -> None:
        live = []
        for due, token, wf in self._heap:
            entry = self._entries.get(wf)
            if entry is not None and entry.token == token:
                live.append((due, token, wf))
        heapq.heapify(live)
        self._heap = live

    # ---- the loop -------------------------------------------------------
    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._timer(), name="scheduler-timer")]
        self._tasks += [asyncio.create_task(self._worker(), name=f"scheduler-fire-{i}")
                        for i in range(self._opts.fire_concurrency)]

    async def _timer(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = self._clock.now().timestamp()
            while self._heap and self._heap[0][0] <= now:
                _, token, wf = heapq.heappop(self._heap)
                entry = self._entries.get(wf)
                if entry is None or entry.token != token or entry.busy or not entry.pending:
                    continue
                entry.busy = True
                self._queue.put_nowait((entry, entry.pending[0]))
            delay = self._opts.max_sleep_seconds
            if self._heap:
                delay = min(delay, max(0.0, self._heap[0][0] - now))
            await _first_of(self._clock.sleep(delay), self._wake.wait())

    async def _worker(self) -> None:
        while True:
            entry, slot = await self._queue.get()
            try:
                await self._fire(entry, slot)
            except Exception:  # noqa: BLE001 - one bad fire must not stop the worker
                log.exception("fire failed", extra={"workflow_id": str(entry.spec.workflow_id)})
                entry.busy = False
                if self._entries.get(entry.spec.workflow_id) is entry:
                    self._push(entry, self._clock.now().timestamp() + self._opts.retry_max_seconds)
            finally:
                self._queue.task_done()

    async def _fire(self, entry: Entry, slot: int) -> None:
        ok = await self._publisher.publish(entry.spec, slot)
        entry.busy = False
        current = self._entries.get(entry.spec.workflow_id) is entry
        now = self._clock.now()
        if ok:
            self._progress.record(entry.spec.workflow_id, slot)
            if not current:
                return
            if entry.pending and entry.pending[0] == slot:
                entry.pending.popleft()
            entry.last = slot if entry.last is None else max(entry.last, slot)
            entry.backoff = 0.0
            if not self._stopping:
                try:
                    self._plan(entry, to_slot(now))
                except SlotError as exc:
                    self.remove(entry.spec.workflow_id)
                    log.error("schedule has no next slot; unloaded until its definition changes",
                              extra={"workflow_id": str(entry.spec.workflow_id), "error": str(exc)})
        elif current:
            entry.backoff = min(max(entry.backoff * 2, 0.25), self._opts.retry_max_seconds)
            self._push(entry, now.timestamp() + entry.backoff)

    async def stop(self, grace_seconds: float) -> None:
        """Stop firing new slots; let publishes already started finish (up to the grace)."""
        self._stopping = True
        self._wake.set()
        if not self._tasks:
            return
        timer, workers = self._tasks[0], self._tasks[1:]
        timer.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_seconds):
                await self._queue.join()
        for task in workers:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


async def _first_of(*aws: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
