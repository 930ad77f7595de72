"""The bulk-replay worker: every gateway replica works through running replay jobs, batch by batch.

A job accepted by this replica wakes it at once; jobs accepted elsewhere, or
left half done by a replica that stopped, are found by a poll every
``IPAAS_GATEWAY_REPLAY_POLL_SECONDS``.  Between two batches it pauses
``IPAAS_GATEWAY_REPLAY_PAUSE_SECONDS`` so that a large replay leaves room for
other writes (each batch's outbox rows are published by the relay meanwhile).
When idle, it deletes jobs that finished more than a week ago (their items with them).
"""

from __future__ import annotations

import logging

import asyncpg

from libs.common.db.errors import STORAGE_ERRORS
from libs.common.tasks import Wakeable, wait_at_most
from services.gateway.store.replays import forget_old_jobs, replay_batch

log = logging.getLogger(__name__)


class ReplayWorker(Wakeable):
    def __init__(self, pool: asyncpg.Pool, *, batch: int, poll_seconds: float, pause_seconds: float) -> None:
        super().__init__()
        self._pool = pool
        self._batch = batch
        self._poll = poll_seconds
        self._pause = pause_seconds
        self.replayed = 0

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                handled = await replay_batch(self._pool, self._batch)
                if not handled:
                    await forget_old_jobs(self._pool, self._batch)
            except STORAGE_ERRORS as exc:
                log.warning("replay batch failed; trying again later", extra={"error": type(exc).__name__})
                handled = 0
            self.replayed += handled
            wait = self._pause if handled else self._poll
            await wait_at_most(self._wake, wait)
