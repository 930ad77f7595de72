"""Trace context through the bus against a real NATS: producer spans, stored contexts, request/reply."""

from __future__ import annotations

from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs.common.bus import Bus
from libs.common.bus.tracing import consumer_span
from libs.common.telemetry import ActiveSpan
from tests.helpers.wait import wait_until


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


def hex_id(value: int, width: int) -> str:
    return format(value, f"0{width}x")


async def test_a_publish_outside_any_span_starts_a_trace_at_its_producer_span(
    bus: Bus, spans: InMemorySpanExporter
) -> None:
    result = await bus.publish("events.t1.w1", b"{}", msg_id="sched:w1:slot")
    (producer,) = named(spans, "publish EVENTS")
    assert producer.context is not None and result.trace_id == hex_id(producer.context.trace_id, 32)
    assert producer.kind is SpanKind.PRODUCER and producer.parent is None
    assert dict(producer.attributes or {})["messaging.message.id"] == "sched:w1:slot"
    stored = await bus.js.get_msg("EVENTS", seq=1)
    assert stored.headers is not None
    assert stored.headers["Nats-Msg-Id"] == "sched:w1:slot"
    _, trace_id, parent_id, _ = stored.headers["traceparent"].split("-")
    assert (trace_id, parent_id) == (hex_id(producer.context.trace_id, 32), hex_id(producer.context.span_id, 16))


async def test_a_publish_inside_a_span_carries_that_trace(bus: Bus, spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("test").start_as_current_span("produce") as span:
        await bus.publish("events.t1.w1", b"{}", msg_id="wf:trace-1")
    (producer,) = named(spans, "publish EVENTS")
    assert producer.parent is not None and producer.parent.span_id == span.get_span_context().span_id
    stored = await bus.js.get_msg("EVENTS", seq=1)
    assert stored.headers is not None
    assert stored.headers["Nats-Msg-Id"] == "wf:trace-1"
    assert stored.headers["traceparent"].split("-")[1] == hex_id(span.get_span_context().trace_id, 32)


async def test_a_stored_message_continues_the_trace_it_was_stored_in(bus: Bus, spans: InMemorySpanExporter) -> None:
    stored = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    headers = {"traceparent": stored, "Nats-Msg-Id": "park:1"}
    await bus.publish_continued("events.t1.w1", b"{}", headers)
    (producer,) = named(spans, "publish EVENTS")
    assert producer.parent is not None and producer.context is not None
    assert hex_id(producer.parent.span_id, 16) == "cd" * 8
    assert hex_id(producer.context.trace_id, 32) == "ab" * 16
    assert headers["traceparent"].split("-")[2] == hex_id(producer.context.span_id, 16)  # the publish is the parent


async def test_the_consumer_span_is_a_child_of_the_publish_with_the_messaging_attributes(
    bus: Bus, spans: InMemorySpanExporter
) -> None:
    await bus.ensure_consumer("EVENTS", "tracing")
    await bus.publish("events.t1.w1", b"{}", msg_id="m-1")
    sub = await bus.js.pull_subscribe_bind("tracing", stream="EVENTS")
    (msg,) = await sub.fetch(1, timeout=5)
    with ActiveSpan(consumer_span(msg, bus.streams.of(msg.subject), "tracing")):
        pass
    await msg.ack()
    (producer,) = named(spans, "publish EVENTS")
    (consumer,) = named(spans, "process EVENTS")
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.parent is not None and producer.context is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert dict(consumer.attributes or {}) == {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.destination.name": "events.t1.w1",
        "messaging.consumer.group.name": "tracing",
        "messaging.message.id": "m-1",
        "messaging.nats.message.delivery_count": 1,
    }


async def test_request_and_reply_carry_the_context_both_ways(bus: Bus, spans: InMemorySpanExporter) -> None:
    async def answer(msg: Msg) -> None:
        with ActiveSpan(consumer_span(msg, msg.subject, "answerers")):
            await bus.respond(msg, b"pong")

    sub = await bus.nc.subscribe("svc.test.ping", queue="answerers", cb=answer)
    try:
        reply = await bus.request("svc.test.ping", b"ping", timeout=5)
        assert reply.data == b"pong"
        await wait_until(lambda: named(spans, "process svc.test.ping"), timeout=5, message="the responder's span")
    finally:
        await sub.unsubscribe()
    (request,) = named(spans, "send svc.test.ping")
    (responder,) = named(spans, "process svc.test.ping")
    assert request.kind is SpanKind.CLIENT and responder.kind is SpanKind.CONSUMER
    assert request.context is not None and responder.context is not None and responder.parent is not None
    assert responder.parent.span_id == request.context.span_id  # the request's context reached the responder
    assert [link.context.span_id for link in request.links] == [responder.context.span_id]  # and came back
