"""Cancelling tasks that may go on after a cancellation (``libs.common.tasks``), on a fake clock."""

from __future__ import annotations

import asyncio
import time

import pytest

from libs.common.tasks import cancel_until_done
from tests.helpers.fake_clock import run_on_fake_clock


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


def now() -> float:
    return asyncio.get_running_loop().time()


def test_a_task_that_lost_one_cancellation_is_cancelled_again() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        plain, stubborn = (asyncio.create_task(_work(stop, n)) for n in (0, 1))
        await asyncio.sleep(0.02)  # both under way
        started = now()
        assert await cancel_until_done([plain, stubborn], every=0.2, rounds=3) == set()
        assert plain.cancelled() and stubborn.cancelled()
        assert now() - started == pytest.approx(0.2)  # one wait for the stubborn one, not three

    run_on_fake_clock(main)


def test_a_task_that_never_stops_is_returned_after_the_rounds() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        forever = asyncio.create_task(_work(stop, 1_000_000))
        await asyncio.sleep(0.02)
        started = now()
        assert await cancel_until_done([forever], every=0.1, rounds=3) == {forever}
        assert now() - started == pytest.approx(0.3)
        stop.set()
        await forever

    run_on_fake_clock(main)


def test_finished_tasks_cost_nothing() -> None:
    async def main() -> None:
        done = asyncio.create_task(asyncio.sleep(0))
        await done
        started = now()
        assert await cancel_until_done([done], every=5.0, rounds=3) == set()
        assert not done.cancelled() and now() == started

    run_on_fake_clock(main)


def test_the_fake_clock_jumps_to_the_next_timer_without_sleeping() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        wall = loop.time(), time.monotonic()
        await asyncio.sleep(3600)
        async with asyncio.timeout(5):
            await asyncio.sleep(1)
        return loop.time() - wall[0], time.monotonic() - wall[1]

    virtual, real = run_on_fake_clock(main)
    assert virtual == 3601 and real < 60  # an hour and a second passed on the fake clock only
