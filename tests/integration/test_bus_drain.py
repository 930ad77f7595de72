"""The consumer's drain ends on time even when work in flight ignores a cancellation.

On Python 3.11 ``asyncio.wait_for`` (used inside nats-py and asyncpg) returns
the result instead of raising when the awaited operation completes as the
cancellation lands, so a handler can carry on after being cancelled.  The
drain must neither wait for such a handler nor leave its message to
``ack_wait``: it cancels again, and in the end NAKs the message itself.

Both tests wait out the drain's cancellation rounds by design (seconds each): they are slow.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from nats.aio.msg import Msg

from libs.common.bus import Bus
from libs.common.bus.consumer import CANCEL_ROUNDS, CANCEL_WAIT_SECONDS, BoundedPullConsumer
from tests.helpers.stubborn_work import stubborn_work
from tests.helpers.wait import wait_until

ACK_WAIT = 30.0  # a message left to the server's redelivery would come back after this
GRACE = 0.3

pytestmark = pytest.mark.slow


async def _drain_stubborn(bus: Bus, durable: str, ignored_cancels: int) -> tuple[float, float]:
    """One message whose handler ignores ``ignored_cancels`` cancellations; returns (drain seconds, redelivery
    seconds after the drain began)."""
    await bus.ensure_consumer("EVENTS", durable, ack_wait_seconds=ACK_WAIT)
    await bus.publish("events.t.w", b"x", msg_id=f"{durable}-1")
    started, let_go = asyncio.Event(), asyncio.Event()

    async def handler(msg: Msg) -> None:
        started.set()
        await stubborn_work(let_go, ignored_cancels)  # work that takes until the test lets it go

    consumer = BoundedPullConsumer(
        bus, stream="EVENTS", durable=durable, handler=handler, max_in_flight=4, fetch_timeout=0.2
    )
    runner = asyncio.create_task(consumer.run())
    await wait_until(started.is_set, timeout=10, message="the handler under way")
    began = time.monotonic()
    try:
        await asyncio.wait_for(consumer.drain(GRACE), timeout=GRACE + CANCEL_ROUNDS * CANCEL_WAIT_SECONDS + 5)
        drained = time.monotonic() - began
        sub = await bus.js.pull_subscribe_bind(durable, stream="EVENTS")
        again = await sub.fetch(1, timeout=10)  # far less than ack_wait: only a NAK brings it back this soon
        redelivered = time.monotonic() - began
    finally:
        let_go.set()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert again[0].metadata.num_delivered == 2
    await again[0].ack_sync()
    await sub.unsubscribe()
    return drained, redelivered


@pytest.mark.parametrize(
    ("durable", "ignored_cancels", "rounds_needed"),
    [("once", 1, 1), ("never", 1_000_000, CANCEL_ROUNDS)],
    ids=["ignores-one-cancellation-is-cancelled-again", "never-stops-does-not-hold-the-drain"],
)
async def test_a_stubborn_handler_does_not_hold_the_drain_and_its_message_comes_back_soon(
    bus: Bus, durable: str, ignored_cancels: int, rounds_needed: int
) -> None:
    drained, redelivered = await _drain_stubborn(bus, durable, ignored_cancels)
    assert drained < GRACE + rounds_needed * CANCEL_WAIT_SECONDS + 1.0
    assert redelivered < ACK_WAIT / 3
