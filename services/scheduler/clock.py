"""Time, injectable: the real clock in production, a manual one in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Wait ``seconds`` of this clock's time, counted from the moment of the call."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(max(0.0, seconds))


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
        waiting = []
        for deadline, future in self._sleepers:
            if future.done():
                continue
            if deadline <= self._now:
                future.set_result(None)
            else:
                waiting.append((deadline, future))
        self._sleepers = waiting

    def advance(self, seconds: float) -> None:
        self.set(self._now + timedelta(seconds=seconds))


async def first_of(*aws: Awaitable[Any]) -> None:
    """Wait until the first of ``aws`` finishes; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
