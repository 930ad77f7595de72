"""The bus against a real JetStream: dedup, bounded in-flight, surviving a server restart; the bounded consumer
hands a message over as soon as it is stored, and still pulls backlogs in batches."""

from __future__ import annotations

import asyncio
import time

import pytest
from nats.aio.msg import Msg

from deploy.local.infra import NatsServer
from libs.common.bus import Bus, BusUnavailable
from tests.helpers.bus_consumer import running_consumer
from tests.helpers.bus_publish import published
from tests.helpers.wait import wait_until

LONG_POLL = 8.0  # a batch pull would hold a lone message until this expired


async def test_same_msg_id_is_stored_once_and_second_publish_reports_duplicate(bus: Bus) -> None:
    first = await bus.publish("events.t1.w1", b'{"n": 1}', msg_id="wf:hook-1")
    second = await bus.publish("events.t1.w1", b'{"n": 1}', msg_id="wf:hook-1")
    other = await bus.publish("events.t1.w1", b'{"n": 2}', msg_id="wf:hook-2")

    assert first.duplicate is False
    assert second.duplicate is True
    assert second.seq == first.seq
    assert other.duplicate is False
    info = await bus.js.stream_info("EVENTS")
    assert info.state.messages == 2


async def test_consumer_never_holds_more_than_its_bound(bus: Bus) -> None:
    bound = 5
    total = 60
    await bus.ensure_consumer("EVENTS", "bounded", max_ack_pending=100)
    await asyncio.gather(*(bus.publish("events.t.w", b"x", msg_id=f"m{i}") for i in range(total)))

    release = asyncio.Event()
    active = 0
    peak = 0
    done = 0
    observed_pending: list[int] = []

    async def handler(msg: Msg) -> None:
        nonlocal active, peak, done
        active += 1
        peak = max(peak, active)
        try:
            await release.wait()
            await msg.ack_sync()
            done += 1
        finally:
            active -= 1

    async with running_consumer(bus, "bounded", handler, max_in_flight=bound, fetch_timeout=0.2):
        await wait_until(lambda: active == bound, timeout=10, message="handlers to fill the bound")

        async def pending_settles() -> bool:
            info = await bus.js.consumer_info("EVENTS", "bounded")
            observed_pending.append(info.num_ack_pending)
            return len(observed_pending) >= 5

        await wait_until(pending_settles, timeout=10, interval=0.1)
        assert max(observed_pending) == bound  # the server sees exactly N unacked, never more
        assert peak == bound
        release.set()
        await wait_until(lambda: done == total, timeout=20, message="all messages handled")
        assert peak == bound
        info = await bus.js.consumer_info("EVENTS", "bounded")
        assert info.num_ack_pending == 0
        assert info.num_pending == 0


async def test_same_bus_survives_server_kill_and_restart_and_runs_its_reconnect_listeners_in_order(
    private_nats: NatsServer, private_bus: Bus
) -> None:
    bus = private_bus
    await bus.ensure_streams()
    await bus.ensure_consumer("EVENTS", "restart")
    before = await bus.publish("events.t.w", b"before", msg_id="before")
    assert before.duplicate is False
    calls: list[str] = []

    async def first() -> None:
        calls.append("first")
        raise RuntimeError("a failing listener does not stop the others")

    async def second() -> None:
        calls.append("second")

    bus.on_reconnect(first)
    bus.on_reconnect(second)

    private_nats.kill()
    await wait_until(lambda: not bus.is_connected, timeout=15, message="client to notice the outage")
    assert calls == []
    with pytest.raises(BusUnavailable):
        await bus.publish("events.t.w", b"during", msg_id="during", timeout=0.5)

    private_nats.start()
    await wait_until(lambda: calls == ["first", "second"], timeout=20, message="both listeners after reconnect")
    assert bus.is_connected  # reconnected by itself
    await wait_until(
        lambda: published(bus, "events.t.w", b"after", msg_id="after"), timeout=15, message="publish after restart"
    )

    received: list[bytes] = []

    async def handler(msg: Msg) -> None:
        received.append(msg.data)
        await msg.ack_sync()

    async with running_consumer(bus, "restart", handler, max_in_flight=4, fetch_timeout=0.2):
        await wait_until(lambda: len(received) >= 2, timeout=15, message="consume after restart")
    assert sorted(received) == [b"after", b"before"]


async def test_stream_provisioning_is_idempotent(bus: Bus) -> None:
    await bus.ensure_streams()
    await bus.ensure_streams()
    await bus.ensure_consumer("EVENTS", "same")
    await bus.ensure_consumer("EVENTS", "same", max_ack_pending=7)
    info = await bus.js.consumer_info("EVENTS", "same")
    assert info.config.max_ack_pending == 7
    names = sorted([s.config.name or "" for s in await bus.js.streams_info()])
    assert names == ["DLQ", "EVENTS", "WORKFLOW_CHANGES"]


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
