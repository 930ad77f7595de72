"""A write-behind micro-batcher: many concurrent callers, one statement per batch.

Callers ``await submit(item)``; items gathered for ``linger`` seconds (or up
to ``max_items``) go to ``flush(items)`` together, which returns one result
per item.  If the flush raises, every caller of that batch gets the error.

At most ``concurrency`` flushes run at once.  While all of them are busy,
new items keep gathering and go out as one batch as soon as a flush
finishes, so batches grow with the load instead of queueing up small.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self,
        name: str,
        flush: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_items: int,
        linger: float,
        concurrency: int = 4,
    ) -> None:
        self._name = name
        self._flush = flush
        self._max = max_items
        self._linger = linger
        self._concurrency = max(1, concurrency)
        self._items: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._items.append((item, fut))
        if len(self._items) >= self._max:
            self._kick()
        elif self._timer is None and self._running < self._concurrency:
            self._timer = loop.call_later(self._linger, self._kick)
        return await fut

    def _kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._items or self._running >= self._concurrency:
            return  # nothing to send, or every flush busy: the next one to finish sends these
        batch, self._items = self._items[: self._max], self._items[self._max :]
        self._running += 1
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
            log.warning(
                "batch write failed", extra={"batch": self._name, "size": len(batch), "error": type(exc).__name__}
            )
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
        else:
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
        finally:
            self._running -= 1
            if self._items:
                self._kick()  # what gathered meanwhile has waited long enough

    async def close(self) -> None:
        while self._items or self._tasks:
            self._kick()
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
