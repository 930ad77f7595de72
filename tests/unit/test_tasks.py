"""Cancelling tasks that may go on after a cancellation (``libs.common.tasks``), on a fake clock."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from libs.common.tasks import cancel_and_wait, cancel_until_done, repeat_until, wait_at_most
from tests.helpers.fake_clock import run_on_fake_clock
from tests.helpers.stubborn_work import stubborn_work


def now() -> float:
    return asyncio.get_running_loop().time()


def test_a_task_that_lost_one_cancellation_is_cancelled_again() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        plain, stubborn = (asyncio.create_task(stubborn_work(stop, n)) for n in (0, 1))
        await asyncio.sleep(0.02)  # both under way
        started = now()
        assert await cancel_until_done([plain, stubborn], every=0.2, rounds=3) == set()
        assert plain.cancelled() and stubborn.cancelled()
        assert now() - started == pytest.approx(0.2)  # one wait for the stubborn one, not three

    run_on_fake_clock(main)


def test_a_task_that_never_stops_is_returned_after_the_rounds() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        forever = asyncio.create_task(stubborn_work(stop, 1_000_000))
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


def test_wait_at_most_ends_at_the_event_or_the_timeout() -> None:
    async def main() -> tuple[float, float]:
        event = asyncio.Event()
        started = now()
        await wait_at_most(event, 2.0)
        timed_out = now() - started
        asyncio.get_running_loop().call_later(0.5, event.set)
        started = now()
        await wait_at_most(event, 2.0)
        return timed_out, now() - started

    timed_out, woken = run_on_fake_clock(main)
    assert timed_out == pytest.approx(2.0) and woken == pytest.approx(0.5)


def test_cancel_and_wait_ends_the_task_and_accepts_none() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(stubborn_work(stop, 0))
        await asyncio.sleep(0.02)
        await cancel_and_wait(task)
        assert task.cancelled()
        await cancel_and_wait(None)

    run_on_fake_clock(main)


def test_repeat_until_logs_a_failed_round_and_goes_on_until_stopped(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[float] = []

    async def main() -> None:
        stopping = asyncio.Event()

        async def work() -> None:
            rounds.append(now())
            if len(rounds) == 2:
                raise OSError("away")
            if len(rounds) == 3:
                stopping.set()

        await repeat_until(stopping, 10.0, work, errors=(OSError,), log=logging.getLogger("t"), failed="it failed")

    run_on_fake_clock(main)
    assert [r - rounds[0] for r in rounds] == [0.0, pytest.approx(10.0), pytest.approx(20.0)]
    assert [(r.getMessage(), getattr(r, "error", None)) for r in caplog.records if r.name == "t"] == [
        ("it failed", "OSError")
    ]
