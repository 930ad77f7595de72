"""The timer: a heap of next fire times, one loop, a version check, batched publishes.

There is no task per schedule and no database access per schedule per tick.
The loop pops every due entry and hands it on in chunks of up to 1,000 slots;
a task per chunk asks Postgres (one query) which version each slot belongs to
(:mod:`services.scheduler.versions`) and publishes the chunk at once
(:meth:`Publisher.publish_many`: every message sent, up to ``fire_concurrency``
PubAcks outstanding); chunks run side by side.  Each schedule's next event is
built ahead, while nothing fires, so at the slot only the send is left.
Schedules with the same cron expression and zone share their slot computation
(:func:`services.scheduler.slots.rule_for`).  A slot of a workflow that another
live replica owns (:mod:`services.scheduler.peers`) is put back by
``backup_delay_seconds`` once: its owner fires it, this replica's fire is the
backup.  Each fire publishes an
``EventEnvelope`` whose ``Nats-Msg-Id`` is ``sched:<wf>:<slot>`` (no version),
so replicas (and a restarted replica) firing the same slot collapse into one
event in JetStream, whatever version each holds.

Invariants:

- progress (``scheduler_state.last_slot``) moves only past slots that were
  published (PubAck), recorded as skipped, or found not to be slots of their
  version, and, for a schedule loaded live (created, enabled), past the moment
  it was loaded; a slot abandoned at shutdown is never claimed, so another
  replica or the restarted one fires it;
- a new version of a loaded schedule takes over from the slots the old one
  already handled; slots of the new version between its creation and the
  moment this replica loaded it (within the misfire grace) are fired late
  rather than lost;
- at shutdown no slot is started; slots already due finish within the drain
  budget, the rest are abandoned (logged, not claimed).
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from libs.common.tasks import wait_at_most
from services.scheduler.catchup import SKIP_REASON, plan_catch_up
from services.scheduler.clock import Clock, first_of
from services.scheduler.firing import Prepared, Publisher
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.progress import ProgressWriter
from services.scheduler.settings import SchedulerOptions
from services.scheduler.slots import SlotError, slot_iso, to_slot
from services.scheduler.store import ScheduleSpec, SkippedSlot
from services.scheduler.tasks import cancel_and_wait
from services.scheduler.versions import CHECK_BATCH, VersionCheck

log = logging.getLogger(__name__)

# Events built ahead per turn of the event loop (preparation yields often, and never while firing).
PREPARE_SLICE = 500
# The longest the cyclic garbage collector stays off while slots are being fired.
GC_PAUSE_MAX_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class DrainReport:
    due: int  # slots due (handed on by the timer, not finished) when the drain began
    finished: int  # of those, published (or found not to be slots of their version) while draining
    seconds: float

    @property
    def abandoned(self) -> int:
        """Due slots left unpublished: never recorded as progress."""
        return self.due - self.finished


@dataclass(eq=False, slots=True)
class Entry:
    spec: ScheduleSpec
    last: int | None  # newest slot fired or accounted for
    pending: deque[int] = field(default_factory=deque)  # slots to fire, oldest first
    token: int = 0
    busy: bool = False
    backoff: float = 0.0
    deferred: int | None = None  # the slot already put back by the backup delay
    prepared: Prepared | None = None  # the event of the next slot, built ahead of time


class Engine:
    def __init__(
        self,
        publisher: Publisher,
        progress: ProgressWriter,
        versions: VersionCheck,
        clock: Clock,
        metrics: SchedulerMetrics,
        options: SchedulerOptions,
        owns: Callable[[uuid.UUID], bool] | None = None,
    ) -> None:
        self._publisher = publisher
        self._owns = owns or (lambda _workflow_id: True)  # alone: every workflow is this replica's
        self._progress = progress
        self._versions = versions
        self._clock = clock
        self._metrics = metrics
        self._opts = options
        self._entries: dict[uuid.UUID, Entry] = {}
        self._heap: list[tuple[float, int, uuid.UUID]] = []
        self._tokens = itertools.count(1)
        self._due: list[tuple[Entry, int]] = []  # popped by the timer, waiting for the version check
        self._due_ready = asyncio.Event()
        self._firing: set[asyncio.Task[None]] = set()  # chunks of checked slots being published
        self._gc_off_since = 0.0
        self._to_prepare: list[Entry] = []  # planned, their next event not built yet
        self._prepare_ready = asyncio.Event()
        self._outstanding = 0  # slots popped by the timer and not finished yet
        self._settled = asyncio.Event()  # set when nothing is outstanding
        self._settled.set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._aborting = False
        self._finished = 0  # slots finished (published, or not a slot) while draining
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

    def upsert(
        self, spec: ScheduleSpec, *, last_slot: int | None, catch_up: bool, changed_at: int | None = None
    ) -> None:
        """Load or replace a schedule.

        ``catch_up`` (start-up): resume after the later of ``last_slot`` (saved
        progress) and ``changed_at`` (the workflow's last change: slots of a
        disabled period or of a replaced definition are not caught up), applying
        the workflow's catch-up policy to the slots missed since.

        Otherwise (a live change), a schedule not loaded yet (created, enabled)
        starts at its next slot after now, and everything up to now is marked
        as accounted for, so a later restart does not catch up a disabled period.
        A new version of a loaded schedule continues where the old one was:
        the old entry's due slots stay due, and the new version's slots since
        its creation (at most ``misfire_grace_seconds`` back) are fired now.

        Raises :class:`SlotError` (and loads nothing) if the slots cannot be computed.
        """
        old = self._entries.get(spec.workflow_id)
        if old is not None and old.spec.version == spec.version and old.spec.trigger == spec.trigger:
            return
        now = to_slot(self._clock.now())
        if old is not None:
            since = max(min(spec.effective_from - 1, now), now - self._opts.misfire_grace_seconds)
            last: int | None = max(old.last if old.last is not None else now, since)
        elif catch_up:
            # Slots before the workflow's last change (an enable, an update) are not caught up.
            bounds = [t for t in (last_slot, None if changed_at is None else min(changed_at, now)) if t is not None]
            last = max(bounds) if bounds else None
        else:
            last = now
            self._progress.record(spec.workflow_id, last)
        entry = Entry(spec=spec, last=last)
        if old is not None:
            # Already due and not fired yet (a publish being retried, or in flight: then it may be
            # published twice, and JetStream keeps one): the version check decides its version.
            entry.pending.extend(s for s in old.pending if s <= now)
        self._entries[spec.workflow_id] = entry
        try:
            self._plan(entry, now)
        except SlotError:
            del self._entries[spec.workflow_id]
            raise
        finally:
            self._metrics.loaded.set(len(self._entries))
        log.log(
            logging.DEBUG if catch_up else logging.INFO,
            "schedule loaded",
            extra={
                "workflow_id": str(spec.workflow_id),
                "version": spec.version,
                "next_slot": slot_iso(entry.pending[0]) if entry.pending else None,
            },
        )

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
        if not self._defer(entry, entry.pending[0]):  # decided now, not in the slot's busy moment
            self._push(entry, entry.pending[0])
        self._to_prepare.append(entry)
        self._prepare_ready.set()

    def _collect_missed(self, entry: Entry, now: int) -> None:
        """Queue (or record as skipped) the slots in ``(last, now]``, per the catch-up policy."""
        if entry.last is None or entry.last >= now:
            return
        if entry.spec.rule.next_after(entry.last) > now:
            return  # the usual case after a fire: nothing was missed
        spec, wf = entry.spec, str(entry.spec.workflow_id)
        plan = plan_catch_up(
            spec.rule,
            spec.trigger.catchup,
            entry.last,
            now,
            window_seconds=self._opts.catchup_window_seconds,
            max_slots=self._opts.max_catchup_slots,
            grace_seconds=self._opts.misfire_grace_seconds,
        )
        if plan.beyond_window:
            log.warning(
                "missed slots older than the catch-up window are not caught up",
                extra={
                    "workflow_id": wf,
                    "from": slot_iso(entry.last),
                    "until": slot_iso(now - self._opts.catchup_window_seconds),
                },
            )
        if plan.dropped or not plan.complete:
            self._metrics.skips.labels("catchup_limit").inc(plan.dropped)
            log.warning(
                "more missed slots than max_catchup_slots; the oldest are not caught up",
                extra={"workflow_id": wf, "dropped": plan.dropped, "dropped_is_exact": plan.complete},
            )
        entry.pending.extend(plan.fire)
        if plan.skipped:
            self._progress.add_skipped([self._skipped_row(spec, s) for s in plan.skipped])
            self._progress.record(spec.workflow_id, plan.skipped[-1])
            self._metrics.skips.labels("catchup_skip").inc(len(plan.skipped))
            log.info(
                "missed slots recorded as skipped",
                extra={"workflow_id": wf, "skipped": len(plan.skipped), "firing": [slot_iso(s) for s in plan.fire]},
            )

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
        """Drop the heap's stale items: those of an unloaded schedule, or superseded by a later push."""
        entries = self._entries
        self._heap = [item for item in self._heap if (e := entries.get(item[2])) is not None and e.token == item[1]]
        heapq.heapify(self._heap)

    # ---- the loop -------------------------------------------------------
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._timer(), name="scheduler-timer"),
            asyncio.create_task(self._checker(), name="scheduler-version-check"),
            asyncio.create_task(self._preparer(), name="scheduler-prepare"),
        ]

    async def _timer(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = self._clock.now().timestamp()
            while self._heap and self._heap[0][0] <= now:
                due, token, wf = heapq.heappop(self._heap)
                entry = self._entries.get(wf)
                if entry is None or entry.token != token or entry.busy or not entry.pending:
                    continue
                if self._defer(entry, due):
                    continue
                entry.busy = True
                if not self._outstanding:
                    # No cyclic collection (a pause of a full generation) while a slot is fired;
                    # what it would find is collected once everything due is done.
                    gc.disable()
                    self._gc_off_since = now
                self._outstanding += 1
                self._settled.clear()
                self._due.append((entry, entry.pending[0]))
            if self._due:
                self._due_ready.set()
            if self._outstanding and now - self._gc_off_since > GC_PAUSE_MAX_SECONDS:
                gc.enable()  # fires never settle (a long outage, or slots back to back): collect anyway
            delay = self._opts.max_sleep_seconds
            if self._heap:
                delay = min(delay, max(0.0, self._heap[0][0] - now))
            await first_of(self._clock.sleep(delay), self._wake.wait())

    def _defer(self, entry: Entry, due: float) -> bool:
        """Put a slot of a workflow another replica owns back by the backup delay (once); ``True`` if it was.

        Asked when the slot is planned (so the timer does not spend the slot's first moments on
        other replicas' schedules) and again when it is due, with the replicas known then.
        """
        slot, delay = entry.pending[0], self._opts.backup_delay_seconds
        if delay <= 0 or entry.deferred == slot or due != slot or self._owns(entry.spec.workflow_id):
            return False
        try:
            if entry.spec.rule.next_after(slot) - slot < 2 * delay:
                return False  # fires too often to wait: every replica fires it at its time
        except SlotError:
            return False
        entry.deferred = slot
        self._push(entry, slot + delay)
        return True

    async def _checker(self) -> None:
        """Hand the due slots on in chunks; each chunk is checked (one query) and published by a task of its own.

        The chunks' queries run side by side (on the pool's connections), so the last chunk
        does not wait for every query before it.
        """
        while True:
            await self._due_ready.wait()
            self._due_ready.clear()
            batch, self._due = self._due, []
            for start in range(0, len(batch), CHECK_BATCH):
                task = asyncio.create_task(self._fire_chunk(batch[start : start + CHECK_BATCH]), name="scheduler-fire")
                self._firing.add(task)
                task.add_done_callback(self._firing.discard)

    async def _preparer(self) -> None:
        """Build the next slot's event of each planned schedule while nothing is being fired.

        At the slot only the send is left to do (and the version check); an event built for
        another slot or version than the one fired is simply built again then.
        """
        while True:
            await self._prepare_ready.wait()
            self._prepare_ready.clear()
            while self._to_prepare:
                await self._settled.wait()  # firing comes first
                batch, self._to_prepare = self._to_prepare[:PREPARE_SLICE], self._to_prepare[PREPARE_SLICE:]
                for entry in batch:
                    if entry.pending and self._entries.get(entry.spec.workflow_id) is entry:
                        slot, spec = entry.pending[0], entry.spec
                        if entry.prepared is None or entry.prepared.slot != slot:
                            entry.prepared = self._publisher.prepare(spec, slot, spec.version)
                await asyncio.sleep(0)

    async def _fire_chunk(self, chunk: list[tuple[Entry, int]]) -> None:
        """Check a chunk of due slots, publish them at once, then account for each (the only place that does)."""
        fires: list[tuple[Entry, int, int | None]] = []
        try:
            started = self._clock.now().timestamp()
            versions = await self._versions.resolve([(entry.spec, slot) for entry, slot in chunk])
            checked_s = self._clock.now().timestamp() - started
            fires = [(entry, slot, version) for (entry, slot), version in zip(chunk, versions, strict=True)]
            if self._aborting:  # past the drain budget (a cancellation lost in a race): start nothing
                return
            sent = [
                (entry.spec, slot, version, entry.prepared) for entry, slot, version in fires if version is not None
            ]
            try:
                published = iter(
                    await self._publisher.publish_many(sent, window=self._opts.fire_concurrency, checked_s=checked_s)
                )
            except Exception:
                log.exception("firing a batch of slots failed", extra={"slots": len(sent)})
                published = iter([False] * len(sent))
            for entry, slot, version in fires:
                # None: not a slot of its version, accounted for without publishing.
                ok = True if version is None else next(published)
                try:
                    self._finish(entry, slot, ok)
                except Exception:
                    log.exception("fire failed", extra={"workflow_id": str(entry.spec.workflow_id)})
                    entry.busy = False
                    if self._entries.get(entry.spec.workflow_id) is entry and not self._stopping:
                        self._push(entry, self._clock.now().timestamp() + self._opts.retry_max_seconds)
        finally:
            self._outstanding -= len(chunk)
            if self._outstanding == 0:
                self._settled.set()
                gc.enable()

    def _finish(self, entry: Entry, slot: int, ok: bool) -> None:
        """After a publish: record progress and plan the next slot (``ok``), or retry with backoff."""
        entry.busy = False
        current = self._entries.get(entry.spec.workflow_id) is entry
        now = self._clock.now()
        if ok:
            self._progress.record(entry.spec.workflow_id, slot)
            if self._stopping:
                self._finished += 1
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
                    log.error(
                        "schedule has no next slot; unloaded until its definition changes",
                        extra={"workflow_id": str(entry.spec.workflow_id), "error": str(exc)},
                    )
        elif current and not self._stopping:
            entry.backoff = min(max(entry.backoff * 2, 0.25), self._opts.retry_max_seconds)
            self._push(entry, now.timestamp() + entry.backoff)

    async def stop(self, grace_seconds: float) -> DrainReport:
        """Start no new slot; let the slots already due be checked and published, up to the grace.

        What is still unpublished then is abandoned: not recorded as progress, so another
        replica, or this one after a restart, fires it.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._stopping = True  # from here the timer hands nothing on
        due = self._outstanding
        self._wake.set()
        if not self._tasks:
            return DrainReport(0, 0, 0.0)
        timer, rest = self._tasks[0], self._tasks[1:]
        log.info("scheduler draining: no new slot starts", extra={"due_slots": due})
        await cancel_and_wait([timer])
        await wait_at_most(self._settled, grace_seconds)
        self._aborting = True
        await cancel_and_wait([*rest, *self._firing])
        self._tasks = []
        return DrainReport(due, self._finished, loop.time() - started)
