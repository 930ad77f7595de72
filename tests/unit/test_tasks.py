"""Cancelling tasks that may go on after a cancellation (``libs.common.tasks``)."""

from __future__ import annotations

import asyncio
import time

from libs.common.tasks import cancel_until_done


async def _work(stop: asyncio.Event, cancels_ignored: int) -> None:
    """Works until ``stop``; the first ``cancels_ignored`` cancellations are lost, as in a 3.11 ``wait_for``."""
    ignored = 0
    while not stop.is_set():
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if ignored >= cancels_ignored:
                raise
            ignored += 1


async def test_a_task_that_lost_one_cancellation_is_cancelled_again() -> None:
    stop = asyncio.Event()
    plain, stubborn = (asyncio.create_task(_work(stop, n)) for n in (0, 1))
    await asyncio.sleep(0.02)  # both under way
    started = time.monotonic()
    assert await cancel_until_done([plain, stubborn], every=0.2, rounds=3) == set()
    assert plain.cancelled() and stubborn.cancelled()
    assert 0.2 <= time.monotonic() - started < 0.6  # one wait for the stubborn one, not three


async def test_a_task_that_never_stops_is_returned_after_the_rounds() -> None:
    stop = asyncio.Event()
    forever = asyncio.create_task(_work(stop, 1_000_000))
    await asyncio.sleep(0.02)
    started = time.monotonic()
    assert await cancel_until_done([forever], every=0.1, rounds=3) == {forever}
    assert 0.3 <= time.monotonic() - started < 0.8
    stop.set()
    await forever


async def test_finished_tasks_cost_nothing() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    started = time.monotonic()
    assert await cancel_until_done([done], every=5.0, rounds=3) == set()
    assert not done.cancelled() and time.monotonic() - started < 0.1
