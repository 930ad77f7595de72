"""A manual wall clock for the scheduler (and anything else that takes a :class:`~services.scheduler.clock.Clock`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta


class ManualClock:
    """A clock that only moves when told to; sleepers wake when it passes their deadline."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> Awaitable[None]:
        # The deadline is fixed now, at the call, not when the caller first awaits.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if seconds <= 0:
            future.set_result(None)
        else:
            self._sleepers = [(t, f) for t, f in self._sleepers if not f.done()]
            self._sleepers.append((self._now + timedelta(seconds=seconds), future))
        return future

    def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError("a manual clock does not go backwards")
        self._now = moment.astimezone(UTC)
        for deadline, future in self._sleepers:
            if deadline <= self._now and not future.done():
                future.set_result(None)
        self._sleepers = [(t, f) for t, f in self._sleepers if not f.done()]

    def advance(self, seconds: float) -> None:
        self.set(self._now + timedelta(seconds=seconds))
