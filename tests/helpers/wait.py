"""Polling with a deadline, instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns a truthy value; return it.

    Raises ``AssertionError`` naming ``message`` when the deadline passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {result!r})")
        await asyncio.sleep(interval)


def wait_until_sync(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, message: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {result!r})")
        time.sleep(interval)


async def equals(value: Awaitable[Any], expected: Any) -> bool:
    """Whether ``value``, once awaited, equals ``expected``: a predicate for :func:`wait_until`."""
    return bool(await value == expected)


async def contains(value: Awaitable[Any], item: Any) -> bool:
    """Whether ``item`` is in ``value``, once awaited: a predicate for :func:`wait_until`."""
    return item in await value


async def consumer_idle(bus: Any, stream: str = "EVENTS", durable: str = "executor") -> bool:
    """Whether the consumer has nothing left to deliver and nothing unacked (a bus or its ``js``'s owner)."""
    info = await bus.js.consumer_info(stream, durable)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)
