"""One loop that keeps long-running messages alive (``in_progress()``), instead of a task per event."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from nats.aio.msg import Msg


class Heartbeats:
    """One loop for all in-flight messages: ``in_progress()`` for those held longer than ``every``.

    This keeps ack_wait from expiring under long connector calls without a
    task per event.
    """

    def __init__(self, every: float) -> None:
        self._every = every
        self._held: dict[int, tuple[float, Msg]] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def hold(self, msg: Msg) -> Iterator[None]:
        key = id(msg)
        self._held[key] = (time.monotonic(), msg)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())
        try:
            yield
        finally:
            self._held.pop(key, None)

    async def _loop(self) -> None:
        while self._held:
            await asyncio.sleep(self._every / 2)
            now = time.monotonic()
            due = [(k, m) for k, (since, m) in list(self._held.items()) if now - since >= self._every]
            for key, msg in due:
                if key in self._held:
                    self._held[key] = (now, msg)
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
