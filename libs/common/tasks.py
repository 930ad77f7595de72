"""Stopping tasks that may outlive a cancellation.

On Python 3.11, ``asyncio.wait_for`` (nats-py and asyncpg use it inside)
returns the awaited operation's result instead of raising ``CancelledError``
when the operation completes just as the cancellation lands, so a cancelled
task can go on with its work.  Shutdown code therefore never waits on one
cancellation without a bound: it cancels again, at an interval, until the
tasks end or the rounds run out, and decides itself what to do with the rest.

:class:`Wakeable` is the start of a background loop that waits for work or a
poll interval, can be woken early, and stops on request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


async def cancel_until_done(tasks: Iterable[asyncio.Task[Any]], *, every: float, rounds: int) -> set[asyncio.Task[Any]]:
    """Cancel ``tasks``, wait up to ``every`` seconds for them to end, and cancel what still runs again.

    At most ``rounds`` rounds; returns the tasks still running after the last one (empty when all ended).
    """
    pending = {task for task in tasks if not task.done()}
    for _ in range(rounds):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
    return pending


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait for it to end, its ``CancelledError`` swallowed."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_at_most(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` have passed, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)


async def repeat_until(
    stopping: asyncio.Event,
    seconds: float,
    work: Callable[[], Awaitable[object]],
    *,
    errors: tuple[type[BaseException], ...],
    log: logging.Logger,
    failed: str,
) -> None:
    """Run ``work`` now and then every ``seconds`` until ``stopping`` is set (which cuts a pause short).

    A round failing with one of ``errors`` is logged as ``failed`` (with the error's type); the next one comes.
    """
    while not stopping.is_set():
        try:
            await work()
        except errors as exc:
            log.warning(failed, extra={"error": type(exc).__name__})
        await wait_at_most(stopping, seconds)


class Wakeable:
    """``_wake`` (set by :meth:`wake` when there is work) and ``_stopping`` (set by :meth:`stop`,
    which wakes the loop too, so it sees the request at once) for a loop's ``run``."""

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
