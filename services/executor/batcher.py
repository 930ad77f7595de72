"""A write-behind micro-batcher: many concurrent callers, one statement per batch.

Callers ``await submit(item)``; items gathered for ``linger`` seconds (or up
to ``max_items``) go to ``flush(items)`` together, which returns one result
per item.  If the flush raises, every caller of that batch gets the error.
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
    def __init__(self, name: str, flush: Callable[[list[T]], Awaitable[Sequence[R]]], *,
                 max_items: int, linger: float, concurrency: int = 4) -> None:
        self._name = name
        self._flush = flush
        self._max = max_items
        self._linger = linger
        self._items: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._items.append((item, fut))
        if len(self._items) >= self._max:
            self._kick()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._kick)
        return await fut

    def _kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._items:
            return
        batch, self._items = self._items, []
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        async with self._slots:
            try:
                results = await self._flush([item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                log.warning("batch write failed", extra={"batch": self._name, "size": len(batch),
                                                          "error": type(exc).__name__})
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                return
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def close(self) -> None:
        self._kick()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
