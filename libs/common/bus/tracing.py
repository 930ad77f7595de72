"""Trace context through NATS, after the OpenTelemetry messaging semantic conventions.

- :func:`producer_span`: a PRODUCER ``publish <stream>`` span; the caller injects the context
  into the message's headers inside it (``Bus.publish`` does both).
- :func:`consumer_span`: a CONSUMER ``process <stream>`` span, child of the context the message
  carries, with ``messaging.system=nats``, ``messaging.destination.name`` (the subject),
  ``messaging.consumer.group.name`` (the durable or queue group), ``messaging.message.id`` and
  ``messaging.nats.message.delivery_count`` (JetStream's count for this message).
- Request/reply (``Bus.request`` / ``Bus.respond``): the requester's CLIENT ``send <subject>``
  span travels in the request's headers; the responder's span (:func:`consumer_span` named
  after the subject) travels back in the reply's, and the requester keeps it as a span link.

Span names carry the stream (or, for request/reply, the fixed service subject), never an
event's subject: ``events.<tenant>.<workflow>`` would make one span name per workflow.
A span is all this costs per message; with no exporter configured nothing else happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nats.aio.msg import Msg
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from libs.common.bus.streams import platform_streams
from libs.common.settings import NatsSettings
from libs.common.telemetry import direct_tracer

TRACER_NAME = "ipaas.bus"
SYSTEM = "nats"
REPLY_LINK = {"ipaas.link.reason": "reply"}


class StreamNames:
    """The stream a subject is stored in, from the ``IPAAS_NATS_*`` layout (``<token>.>`` patterns)."""

    def __init__(self, settings: NatsSettings) -> None:
        self._prefixes = [(spec.subjects[0].removesuffix(">"), spec.name) for spec in platform_streams(settings)]

    def of(self, subject: str) -> str:
        for prefix, stream in self._prefixes:
            if subject.startswith(prefix):
                return stream
        return subject


def producer_span(
    stream: str,
    subject: str,
    msg_id: str | None,
    *,
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> trace.Span:
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": subject,
    }
    if msg_id is not None:
        attrs["messaging.message.id"] = msg_id
    if attributes:
        attrs.update(attributes)
    return direct_tracer(TRACER_NAME).start_span(
        f"publish {stream}", context=parent, kind=SpanKind.PRODUCER, attributes=attrs
    )


def extracted(headers: Mapping[str, str] | None) -> otel_context.Context | None:
    """The context ``headers`` carry; ``None`` (the current one) when there are no headers."""
    return propagate.extract(headers) if headers else None


def delivery_count(msg: Msg) -> int | None:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:  # noqa: BLE001 - not a JetStream message (no ack subject to read it from)
        return None


def consumer_span(msg: Msg, stream: str, group: str) -> trace.Span:
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "process",
        "messaging.destination.name": msg.subject,
        "messaging.consumer.group.name": group,
    }
    headers = msg.headers
    if headers and "Nats-Msg-Id" in headers:
        attrs["messaging.message.id"] = headers["Nats-Msg-Id"]
    count = delivery_count(msg)
    if count is not None:
        attrs["messaging.nats.message.delivery_count"] = count
    return direct_tracer(TRACER_NAME).start_span(
        f"process {stream}", context=extracted(headers), kind=SpanKind.CONSUMER, attributes=attrs
    )


def request_span(subject: str) -> trace.Span:
    return direct_tracer(TRACER_NAME).start_span(
        f"send {subject}",
        kind=SpanKind.CLIENT,
        attributes={
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "request",
            "messaging.destination.name": subject,
        },
    )


def link_reply(span: trace.Span, reply: Msg) -> None:
    """Keep the responder's span, which the reply's headers name, as a link of the request's span."""
    ctx = extracted(reply.headers)
    if ctx is None:
        return
    replied = trace.get_current_span(ctx).get_span_context()
    if replied.is_valid:
        span.add_link(replied, REPLY_LINK)
