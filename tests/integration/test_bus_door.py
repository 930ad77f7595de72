"""The bus's own doors against a real NATS: subscriptions, requests, events, stream info, reconnects.

What services used to do with the raw client (``bus.nc``/``bus.js``), each through its bus method; the
reconnect listeners are tested with the bus surviving a restart (test_bus.py).
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from libs.common.bus import Bus, Message, MessageHandler, MessageTooLarge, NoResponders, RequestTimeout
from libs.common.models.events import EventEnvelope, Trigger, event_id_for
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
    env = EventEnvelope(
        event_id=event_id_for(workflow, "run-1"),
        dedup_key="run-1",
        tenant_id=tenant,
        workflow_id=workflow,
        workflow_version=2,
        trigger=Trigger.MANUAL,
        payload={"n": 1, "text": "é"},
    )
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
