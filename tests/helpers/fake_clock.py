"""Fake clocks for unit tests of logic where time matters.

:class:`ManualClock` is for code that takes a clock (``clock=``): it answers ``now``, which only the
test moves (``clock.now += 61``).

:func:`run_on_fake_clock` runs a coroutine on a loop whose ``time()`` is virtual: whenever nothing
is ready to run and no I/O is waiting, the clock jumps straight to the next timer instead of
sleeping.  ``asyncio.sleep``, ``asyncio.wait(timeout=...)`` and ``asyncio.timeout`` all read
``loop.time()``, so a test of a 0.2 s back-off takes no time and can assert the exact delay
(``asyncio.get_running_loop().time()``), however busy the machine is.

Only for code without real I/O: a socket read would still wait in real time (the clock never
jumps while the selector reports I/O ready, and it blocks for real when no timer is due).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class ManualClock:
    """A ``() -> float`` clock that stands still until the test moves ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class _JumpingSelector(selectors.DefaultSelector):
    """Polls without blocking; a wait for a timer moves the fake clock forward instead."""

    def __init__(self, loop_time: list[float]) -> None:
        super().__init__()
        self._now = loop_time

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only I/O (or another thread) can wake the loop
            return super().select(None)
        self._now[0] += timeout
        return []


class FakeClockLoop(asyncio.SelectorEventLoop):
    """``time()`` starts at 0 and moves only when the loop would otherwise sleep."""

    def __init__(self) -> None:
        self._now = [0.0]
        super().__init__(_JumpingSelector(self._now))

    def time(self) -> float:
        return self._now[0]


def run_on_fake_clock(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` to completion on a :class:`FakeClockLoop`, then close the loop."""
    loop = FakeClockLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
