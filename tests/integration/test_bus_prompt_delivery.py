"""The bounded consumer hands a message over as soon as it is stored, and still pulls backlogs in batches."""

from __future__ import annotations

import asyncio
import time

from nats.aio.msg import Msg

from libs.common.bus import Bus
from tests.helpers.bus_consumer import running_consumer
from tests.helpers.wait import wait_until

LONG_POLL = 8.0  # a batch pull would hold a lone message until this expired


async def test_lone_message_on_an_idle_stream_is_handled_before_the_poll_expires(bus: Bus) -> None:
    await bus.ensure_consumer("EVENTS", "prompt", max_ack_pending=100)
    handled: list[float] = []

    async def handler(msg: Msg) -> None:
        handled.append(time.monotonic())
        await msg.ack()

    async with running_consumer(
        bus, "prompt", handler, grace=1.0, max_in_flight=64, max_batch=32, fetch_timeout=LONG_POLL
    ):

        async def parked() -> bool:  # the consumer's long poll is waiting on the (empty) stream
            return bool((await bus.js.consumer_info("EVENTS", "prompt")).num_waiting)

        await wait_until(parked, timeout=10, message="consumer waiting on its pull")
        published = time.monotonic()
        await bus.publish("events.t.w", b"x", msg_id="lone-1")
        await wait_until(lambda: handled, timeout=LONG_POLL / 2, message="the lone message handled")
        assert handled[0] - published < LONG_POLL / 2


async def test_a_backlog_is_drained_completely_and_within_the_bound(bus: Bus) -> None:
    total, bound = 300, 40
    await bus.ensure_consumer("EVENTS", "backlog", max_ack_pending=1000)
    await asyncio.gather(*(bus.publish("events.t.w", b"x", msg_id=f"b{i}") for i in range(total)))
    seen: set[int] = set()
    active = peak = 0

    async def handler(msg: Msg) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.001)
            seen.add(msg.metadata.sequence.stream)
            await msg.ack()
        finally:
            active -= 1

    async with running_consumer(
        bus, "backlog", handler, grace=1.0, max_in_flight=bound, max_batch=16, fetch_timeout=LONG_POLL, min_fetch=4
    ):
        await wait_until(lambda: len(seen) == total, timeout=30, message="backlog drained")
        assert peak <= bound
