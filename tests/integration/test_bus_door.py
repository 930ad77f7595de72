"""The bus's own doors against a real NATS: subscriptions, requests, events, stream info, reconnects.

What services used to do with the raw client (``bus.nc``/``bus.js``), each through its bus method; the
reconnect listeners are tested with the bus surviving a restart (test_bus.py).  The services' users of
those doors too: the executor's JetStream readers (the fairness backlog view and the stats gauges ask
``STREAM.INFO``, with a subject filter, and ``CONSUMER.INFO`` through :meth:`Bus.stream_info` /
:meth:`Bus.consumer_info`), and the gateway's webhook cache, whose entry a change drops (a core
subscription) and which a reconnect clears (a reconnect listener).
"""

from __future__ import annotations

import uuid
from collections import Counter

import asyncpg
import pytest

from deploy.local.infra import NatsServer
from libs.common.bus import Bus, Message, MessageHandler, MessageTooLarge, NoResponders, RequestTimeout
from libs.common.http.metrics import Metrics
from libs.common.models.events import Trigger, workflow_changed_subject
from services.executor.deferred import Waker
from services.executor.fairness import BacklogView, TenantSlots
from services.executor.metrics import ExecutorMetrics
from services.executor.stats import StatsReader
from services.gateway.hooks.cache import WebhookTarget, WorkflowCache
from services.gateway.hooks.invalidation import clear_on_reconnect, subscribe_invalidations
from tests.helpers.fakes import envelope
from tests.helpers.wait import wait_until
from tests.helpers.wire_events import webhook_event


async def test_queue_group_members_share_messages_and_a_plain_subscriber_sees_all(bus: Bus) -> None:
    got: Counter[str] = Counter()
    seen_by_all: list[bytes] = []

    def member(name: str) -> MessageHandler:
        async def cb(msg: Message) -> None:
            got[name] += 1

        return cb

    async def everyone(msg: Message) -> None:
        seen_by_all.append(msg.data)

    subs = [
        await bus.subscribe("svc.test.work", member("a"), queue="workers"),
        await bus.subscribe("svc.test.work", member("b"), queue="workers"),
        await bus.subscribe("svc.test.work", everyone, pending_msgs_limit=1000),
    ]
    try:
        for i in range(40):
            await bus.publish_core("svc.test.work", str(i).encode(), flush=i == 39)
        await wait_until(lambda: len(seen_by_all) == 40 and sum(got.values()) == 40, message="all 40 delivered")
        assert sum(got.values()) == 40  # each message to one member of the group
        assert sorted(seen_by_all, key=int) == [str(i).encode() for i in range(40)]
    finally:
        for sub in subs:
            await sub.unsubscribe()


async def test_request_is_answered_refused_with_nobody_listening_and_times_out_unanswered(bus: Bus) -> None:
    heard: list[bytes] = []

    async def echo(msg: Message) -> None:
        await bus.respond(msg, b"pong:" + msg.data)

    async def silent(msg: Message) -> None:
        heard.append(msg.data)

    with pytest.raises(NoResponders):
        await bus.request("svc.test.nobody", b"ping", timeout=2)
    subs = [await bus.subscribe("svc.test.echo", echo, queue="echoes"), await bus.subscribe("svc.test.silent", silent)]
    try:
        assert (await bus.request("svc.test.echo", b"x", timeout=5)).data == b"pong:x"
        with pytest.raises(RequestTimeout):
            await bus.request("svc.test.silent", b"ping", timeout=0.3)
        assert heard == [b"ping"]
    finally:
        for sub in subs:
            await sub.unsubscribe()


async def test_publish_event_stores_the_models_bytes_with_its_msg_id_and_traceparent(bus: Bus) -> None:
    from libs.common.telemetry import setup_tracing

    setup_tracing("test")
    workflow, tenant = uuid.uuid4(), uuid.uuid4()
    env = envelope(tenant, workflow, {"n": 1, "text": "é"}, version=2, trigger=Trigger.MANUAL, dedup_key="run-1")
    first = await bus.publish_event(env)
    again = await bus.publish_event(env)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert first.traceparent is not None
    stored = await bus.js.get_msg("EVENTS", seq=first.seq)
    assert stored.data == env.model_dump_json().encode()
    assert stored.headers is not None
    assert stored.headers["Nats-Msg-Id"] == env.msg_id
    assert stored.headers["traceparent"] == first.traceparent
    assert first.trace_id is None or first.traceparent.split("-")[1] == first.trace_id


async def test_publish_event_over_max_payload_is_refused_before_sending(bus: Bus) -> None:
    assert bus.max_payload > 0
    big = webhook_event(uuid.uuid4(), uuid.uuid4(), b'"' + b"a" * bus.max_payload + b'"', dedup_key="big")
    with pytest.raises(MessageTooLarge) as refused:
        await bus.publish_event(big)
    assert refused.value.limit == bus.max_payload and refused.value.size > bus.max_payload
    assert bus.is_connected  # the connection every publish shares is still up
    info = await bus.stream_info("EVENTS")
    assert info.state.messages == 0


async def test_stream_info_filters_subjects_and_consumer_info_reads_the_durable(bus: Bus) -> None:
    await bus.publish("events.t1.w1", b"{}", msg_id="a")
    await bus.publish("events.t2.w1", b"{}", msg_id="b")
    await bus.publish("events.t2.w2", b"{}", msg_id="c")
    info = await bus.stream_info("EVENTS", subjects_filter="events.t2.>")
    assert set(info.state.subjects or {}) == {"events.t2.w1", "events.t2.w2"}
    await bus.ensure_consumer("EVENTS", "door", max_ack_pending=7)
    consumer = await bus.consumer_info("EVENTS", "door")
    assert consumer.num_pending == 3
    assert consumer.config.max_ack_pending == 7


async def test_ordered_subscription_sees_new_messages_only(bus: Bus) -> None:
    s = bus.settings
    await bus.publish("workflows.changed.t.old", b"old", msg_id="old")
    got: list[bytes] = []

    async def cb(msg: Message) -> None:
        got.append(msg.data)

    sub = await bus.subscribe_ordered(s.changes_subjects, cb, stream=s.changes_stream)
    try:
        await bus.publish("workflows.changed.t.new", b"new", msg_id="new")
        await wait_until(lambda: got == [b"new"], message="the new change only")
    finally:
        await sub.unsubscribe()


async def _publish(bus: Bus, tenant: str, n: int) -> None:
    for i in range(n):
        await bus.publish(f"events.{tenant}.{uuid.uuid4()}", b"{}", msg_id=f"{tenant}:{i}")


async def test_backlog_view_names_the_tenants_with_events_waiting(bus: Bus) -> None:
    s = bus.settings
    slots = TenantSlots(8, headroom=0, patience=1.0)
    view = BacklogView(bus, slots, stream=s.events_stream, subjects=s.events_subjects, interval=1, busy=lambda: True)
    assert await view.read_once() == frozenset()
    await _publish(bus, "tenant-a", 2)
    await _publish(bus, "tenant-b", 1)
    assert await view.read_once() == frozenset({"tenant-a", "tenant-b"})


async def test_stats_reader_sets_stream_and_consumer_gauges(bus: Bus, pool: asyncpg.Pool) -> None:
    s = bus.settings
    # The session's streams may hold what earlier tests left: the gauges are read against what was there.
    events_before = int((await bus.stream_info(s.events_stream)).state.messages or 0)
    dlq_before = int((await bus.stream_info(s.dlq_stream)).state.messages or 0)
    await bus.ensure_consumer(s.events_stream, "stats-test")
    await _publish(bus, "tenant-a", 3)
    registry = Metrics("executor")
    metrics = ExecutorMetrics(registry)
    waker = Waker(pool, bus, batch=8, poll_seconds=1, publish_timeout=5)
    reader = StatsReader(
        bus,
        waker,
        metrics,
        streams=[s.events_stream, s.dlq_stream],
        events_stream=s.events_stream,
        consumer="stats-test",
        interval=60,
    )
    await reader.read_once()

    def sample(name: str, **labels: str) -> float | None:
        return registry.registry.get_sample_value(name, labels)

    assert sample("ipaas_stream_messages", stream=s.events_stream) == events_before + 3
    assert sample("ipaas_stream_messages", stream=s.dlq_stream) == dlq_before
    assert (sample("ipaas_stream_bytes", stream=s.events_stream) or 0) > 0
    assert sample("ipaas_executor_consumer_pending") == events_before + 3  # a new consumer: every message
    assert sample("ipaas_executor_consumer_ack_pending") == 0
    assert sample("ipaas_executor_parked_events") == 0


def _counting_cache() -> tuple[WorkflowCache, list[uuid.UUID]]:
    loads: list[uuid.UUID] = []

    async def loader(workflow_id: uuid.UUID) -> WebhookTarget | None:
        loads.append(workflow_id)
        return WebhookTarget(workflow_id, uuid.uuid4(), len(loads), b"k")

    return WorkflowCache(loader, ttl=600, negative_ttl=1, max_entries=100), loads


async def test_a_change_drops_the_entry_and_a_reconnect_clears_the_cache(
    private_nats: NatsServer, private_bus: Bus
) -> None:
    bus = private_bus
    cache, loads = _counting_cache()
    changed, kept = uuid.uuid4(), uuid.uuid4()
    sub = await subscribe_invalidations(bus, cache)
    clear_on_reconnect(bus, cache)
    try:
        await cache.get(changed)
        await cache.get(kept)
        assert loads == [changed, kept]

        await bus.publish_core(workflow_changed_subject(uuid.uuid4(), changed), b"{}")

        async def read_again(workflow_id: uuid.UUID) -> bool:
            """Whether a look-up of ``workflow_id`` (made now) was its second load."""
            await cache.get(workflow_id)
            return loads.count(workflow_id) == 2

        await wait_until(lambda: read_again(changed), message="the changed workflow to be read again")
        await cache.get(kept)
        assert loads.count(kept) == 1  # untouched by another workflow's change

        private_nats.kill()
        await wait_until(lambda: not bus.is_connected, timeout=15, message="client to notice the outage")
        private_nats.start()
        await wait_until(lambda: bus.is_connected, timeout=20, message="client to reconnect")
        await wait_until(lambda: read_again(kept), timeout=10, message="the whole cache cleared after the reconnect")
    finally:
        await sub.unsubscribe()
