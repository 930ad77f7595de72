"""Parked events go back to EVENTS when they are due.

An event that has to wait (a retry's backoff, an open breaker, its tenant
over its share, another replica's live lease) leaves the JetStream consumer:
its bytes and trace headers are written to ``deferred_events`` with a due
time, and the message is acked.  Waiting work therefore holds none of the
consumer's ``max_ack_pending`` or any replica's in-flight slots.

Every replica runs a :class:`Waker`.  A pass takes due rows with
``FOR UPDATE SKIP LOCKED`` (replicas share the work without taking the same
row), publishes each to its subject with ``Nats-Msg-Id: park:<park_id>``,
deletes the published rows and commits.  A crash between the publish and
the commit publishes the same park id again, which JetStream's duplicate
window drops.  A publish that fails (NATS away, EVENTS full) leaves the row
for a later pass: nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from libs.common.bus import Bus, BusError
from libs.common.bus.client import MSG_ID_HEADER
from libs.common.db.errors import STORAGE_ERRORS
from libs.common.tasks import Wakeable, wait_at_most

log = logging.getLogger(__name__)

DEFERRALS_HEADER = "Ipaas-Deferrals"

TAKE_SQL = """
SELECT event_id, subject, data, headers, deferrals, park_id FROM deferred_events
 WHERE due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED
"""
DELETE_SQL = "DELETE FROM deferred_events WHERE event_id = ANY($1::uuid[])"
NEXT_SQL = "SELECT extract(epoch FROM min(due_at) - now())::float8 FROM deferred_events"
COUNT_SQL = "SELECT count(*) FROM deferred_events"


class Waker(Wakeable):
    def __init__(
        self, pool: asyncpg.Pool, bus: Bus, *, batch: int, poll_seconds: float, publish_timeout: float
    ) -> None:
        super().__init__()
        self._pool, self._bus, self._batch = pool, bus, batch
        self._poll, self._publish_timeout = poll_seconds, publish_timeout
        self.published = 0

    def due_in(self, seconds: float) -> None:
        """Something was parked for ``seconds``: look sooner if that is earlier than the next poll."""
        if seconds < self._poll:
            self._wake.set()

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                _, full = await self.wake_once()
            except Exception as exc:  # noqa: BLE001 - the waker must outlive any one bad pass
                log.warning(
                    "deferred events pass failed; retrying",
                    extra={"error": type(exc).__name__, "detail": str(exc)[:200], "retry_in_s": backoff},
                )
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            if full:
                continue  # a full batch went out: there may be more due now
            await self._sleep(await self._next_due())

    async def wake_once(self) -> tuple[int, bool]:
        """One pass: publish what is due; returns (published, whether the batch was full)."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(TAKE_SQL, self._batch)
            if not rows:
                return 0, False
            results = await asyncio.gather(*(self._publish(row) for row in rows), return_exceptions=True)
            sent = [row["event_id"] for row, res in zip(rows, results, strict=True) if res is None]
            failed = [res for res in results if res is not None]
            if sent:
                await conn.execute(DELETE_SQL, sent)
        self.published += len(sent)
        if failed:
            first = failed[0]
            if isinstance(first, BaseException) and not isinstance(first, BusError):
                raise first
            raise BusError(f"{len(failed)} parked events could not be published: {first}")
        return len(sent), len(rows) == self._batch

    async def _publish(self, row: Any) -> None:
        headers: dict[str, str] = {str(k): str(v) for k, v in (row["headers"] or {}).items()}
        headers[MSG_ID_HEADER] = f"park:{row['park_id']}"
        headers[DEFERRALS_HEADER] = str(row["deferrals"])
        # The event's trace goes on: a PRODUCER span, child of the context the event was parked with.
        await self._bus.publish_continued(row["subject"], bytes(row["data"]), headers, timeout=self._publish_timeout)

    async def _next_due(self) -> float:
        try:
            seconds = await self._pool.fetchval(NEXT_SQL)
        except STORAGE_ERRORS:
            return self._poll
        return self._poll if seconds is None else max(0.0, min(float(seconds), self._poll))

    async def count(self) -> int:
        return int(await self._pool.fetchval(COUNT_SQL))

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0 or self._stopping.is_set():
            return
        await wait_at_most(self._wake, seconds)
