"""Retention: finished executions older than ``IPAAS_EXECUTOR_RETENTION_DAYS`` are deleted, in small batches.

A pass deletes at most ``IPAAS_EXECUTOR_RETENTION_BATCH`` executions per
statement, with their tries (``execution_attempts``), their step checkpoints
(``execution_steps``) and their dead letter,
oldest first, and commits; it repeats until a batch comes back short, pausing
between batches.  Each statement locks only the rows it deletes, and skips
rows another transaction holds (``FOR UPDATE SKIP LOCKED``), so replicas that
prune at once share the work and a claim is never kept waiting.

Only final executions are pruned (``succeeded``, ``dead``, ``skipped``, ``filtered``):
a ``running`` or ``failed`` one (a retry is due) is kept whatever its age.
``IPAAS_EXECUTOR_RETENTION_DAYS=0`` keeps everything.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from libs.common.db.errors import STORAGE_ERRORS
from libs.common.tasks import repeat_until, wait_at_most

log = logging.getLogger(__name__)

PRUNE_SQL = """
WITH doomed AS (
    SELECT id, event_id FROM executions
     WHERE finished_at IS NOT NULL AND finished_at < $1 AND status IN ('succeeded', 'dead', 'skipped', 'filtered')
     ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED
), tries AS (
    DELETE FROM execution_attempts WHERE event_id IN (SELECT event_id FROM doomed)
), checkpoints AS (
    DELETE FROM execution_steps WHERE event_id IN (SELECT event_id FROM doomed)
), letters AS (
    DELETE FROM dead_letters WHERE event_id IN (SELECT event_id FROM doomed)
)
DELETE FROM executions WHERE id IN (SELECT id FROM doomed)
"""


class Pruner:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        retention_days: float,
        batch: int,
        interval_seconds: float,
        pause_seconds: float = 0.05,
    ) -> None:
        self._pool = pool
        self._retention = timedelta(days=retention_days)
        self._batch = batch
        self._interval = interval_seconds
        self._pause = pause_seconds
        self._stopping = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self._retention > timedelta(0)

    async def prune_batch(self, cutoff: datetime) -> int:
        """Delete one batch of executions that finished before ``cutoff``; the number deleted."""
        status: str = await self._pool.execute(PRUNE_SQL, cutoff, self._batch)
        return int(status.rsplit(" ", 1)[-1])

    async def prune(self, now: datetime) -> int:
        """One pass: batches until one comes back short (or the pruner is stopped)."""
        cutoff = now - self._retention
        total = 0
        while not self._stopping.is_set():
            deleted = await self.prune_batch(cutoff)
            total += deleted
            if deleted < self._batch:
                break
            await wait_at_most(self._stopping, self._pause)
        if total:
            log.info("pruned expired executions", extra={"deleted": total, "cutoff": cutoff.isoformat()})
        return total

    async def run(self) -> None:
        if not self.enabled:
            return
        await repeat_until(
            self._stopping,
            self._interval,
            lambda: self.prune(datetime.now(UTC)),
            errors=STORAGE_ERRORS,
            log=log,
            failed="execution pruning failed; trying again later",
        )

    def stop(self) -> None:
        self._stopping.set()
