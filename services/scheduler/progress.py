"""Writes fired-slot progress and skipped-slot rows to Postgres, off the timer path.

Writes are coalesced: while one batch is being written, new records pile up
and go out together in the next one.  If Postgres is down the records are
kept (progress as one newest slot per workflow, skipped rows up to a bound)
and retried with backoff, so the timer loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from services.scheduler.store import ScheduleStore, SkippedSlot
from services.scheduler.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MAX_PENDING_SKIPPED = 100_000


class ProgressWriter:
    def __init__(self, store: ScheduleStore, *, retry_max_seconds: float = 5.0) -> None:
        self._store = store
        self._progress: dict[uuid.UUID, int] = {}
        self._skipped: list[SkippedSlot] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._retry_max = retry_max_seconds
        self._task: asyncio.Task[None] | None = None

    def record(self, workflow_id: uuid.UUID, slot: int) -> None:
        if slot > self._progress.get(workflow_id, slot - 1):
            self._progress[workflow_id] = slot
        self._signal()

    def add_skipped(self, rows: list[SkippedSlot]) -> None:
        self._skipped.extend(rows)
        overflow = len(self._skipped) - MAX_PENDING_SKIPPED
        if overflow > 0:
            log.error("too many skipped rows waiting for postgres; dropping the oldest", extra={"dropped": overflow})
            del self._skipped[:overflow]
        self._signal()

    @property
    def pending(self) -> bool:
        return bool(self._progress or self._skipped)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scheduler-progress")

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until everything recorded so far is written (``False`` on timeout)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
                return True
        return False

    async def stop(self, timeout: float) -> bool:
        """Write what is left (up to ``timeout``), then stop; ``False`` if some was not written."""
        written = await self.wait_idle(timeout)
        if not written:
            log.warning(
                "progress not fully written at shutdown; catch-up will cover it",
                extra={"workflows": len(self._progress), "skipped_rows": len(self._skipped)},
            )
        if self._task is not None:
            await cancel_and_wait([self._task])
        return written

    def _signal(self) -> None:
        self._idle.clear()
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            await self._wake.wait()
            self._wake.clear()
            progress, self._progress = self._progress, {}
            skipped, self._skipped = self._skipped, []
            try:
                # Skipped rows first: progress past a slot must never be saved before its record.
                await self._store.record_skipped(skipped)
                skipped = []
                await self._store.save_progress(progress)
            except Exception as exc:  # noqa: BLE001 - keep the records and retry, whatever the failure
                log.warning(
                    "writing scheduler progress failed; retrying",
                    extra={"error": type(exc).__name__, "retry_in_s": backoff},
                )
                self._skipped[:0] = skipped
                for wf, slot in progress.items():
                    if slot > self._progress.get(wf, slot - 1):
                        self._progress[wf] = slot
                self._wake.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max)
                continue
            backoff = 0.2
            if not self.pending:
                self._idle.set()
