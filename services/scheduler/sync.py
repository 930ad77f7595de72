"""Keeps the timer heap in step with Postgres: full resyncs and single-workflow changes."""

from __future__ import annotations

import asyncio
import logging
import uuid

from libs.common.models.events import WorkflowChanged
from services.scheduler.engine import Engine
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.slots import SlotError
from services.scheduler.store import ScheduleStore, StoredSchedule

log = logging.getLogger(__name__)

# Yield to the event loop every this many rows while loading, so a big resync
# never stalls the timer.
YIELD_EVERY = 200


class ScheduleSync:
    def __init__(self, store: ScheduleStore, engine: Engine, metrics: SchedulerMetrics) -> None:
        self._store = store
        self._engine = engine
        self._metrics = metrics
        self._broken: set[uuid.UUID] = set()
        # One writer at a time: a change applied in the middle of a resync could
        # otherwise be undone by the resync's older snapshot.
        self._lock = asyncio.Lock()
        self.loaded = asyncio.Event()

    async def resync(self, *, startup: bool) -> None:
        """Load every active schedule; drop what is no longer active.

        At start-up, schedules resume from their stored progress (catch-up);
        later resyncs treat anything new as a live change.
        """
        async with self._lock:
            rows = await self._store.load_active()
            seen: set[uuid.UUID] = set()
            for i, row in enumerate(rows):
                seen.add(row["id"])
                loaded = self._engine.spec_of(row["id"])
                if loaded is not None and loaded.version == row["current_version"]:
                    continue  # versions are immutable: nothing to re-parse
                await self._apply(self._store.parse(row), catch_up=startup)
                if i % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)
            for workflow_id in self._engine.workflow_ids() - seen:
                self._engine.remove(workflow_id)
            self._broken &= seen
            self._metrics.broken.set(len(self._broken))
            self.loaded.set()
            log.info(
                "schedules resynced",
                extra={"loaded": len(self._engine.workflow_ids()), "broken": len(self._broken), "startup": startup},
            )

    async def on_change(self, change: WorkflowChanged) -> None:
        """Apply one change from the feed.  Disable and delete need no database read."""
        await self.loaded.wait()
        async with self._lock:
            if change.deleted or not change.is_active:
                self._engine.remove(change.workflow_id)
                self._broken.discard(change.workflow_id)
                self._metrics.broken.set(len(self._broken))
                return
            stored = await self._store.load_one(change.workflow_id)
            if stored is None:
                self._engine.remove(change.workflow_id)
                return
            await self._apply(stored, catch_up=False)
            self._metrics.broken.set(len(self._broken))

    async def _apply(self, stored: StoredSchedule, *, catch_up: bool) -> None:
        wf = stored.workflow_id
        if stored.error is not None:
            self._engine.remove(wf)
            self._broken.add(wf)
            if stored.error != stored.stored_error:
                log.warning(
                    "schedule definition is broken; it will not fire until fixed",
                    extra={"workflow_id": str(wf), "error": stored.error},
                )
                await self._store.set_error(wf, stored.error)
            return
        self._broken.discard(wf)
        if stored.stored_error is not None and (stored.spec is not None or not stored.is_schedule):
            log.info("schedule error cleared", extra={"workflow_id": str(wf)})
            await self._store.set_error(wf, None)
        if stored.spec is None:
            self._engine.remove(wf)
            return
        try:
            self._engine.upsert(
                stored.spec, last_slot=stored.last_slot, changed_at=stored.changed_at, catch_up=catch_up
            )
        except SlotError as exc:
            self._engine.remove(wf)
            self._broken.add(wf)
            log.warning(
                "schedule has no next slot; it will not fire until fixed",
                extra={"workflow_id": str(wf), "error": str(exc)},
            )
            await self._store.set_error(wf, str(exc))
