"""Span attributes, events (recorded exceptions among them) and statuses masked like log lines.

The masking runs in the exporter, on the batch processor's thread, when a batch leaves: a span
costs nothing more while it is recorded, and a span that is never exported is never masked.
The rules are the log handler's (:func:`libs.common.logs.mask_value`): a key that names a secret
loses its value, and every string is scanned for secret shapes (bearer tokens, ``whsec_``
secrets, keys, URLs with credentials...).  Strings are cut at ``MAX_ATTRIBUTE_CHARS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from libs.common.logs import mask_truncated, mask_value

MAX_ATTRIBUTE_CHARS = 8192


def masked_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if not attributes:
        return {}
    masked = mask_value(dict(attributes), MAX_ATTRIBUTE_CHARS)
    # mask_value turns tuples (OTel's sequence attributes) into lists; OTLP encodes either.
    return {key: tuple(value) if isinstance(value, list) else value for key, value in masked.items()}


def masked_span(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.description:
        status = Status(status.status_code, mask_truncated(status.description, MAX_ATTRIBUTE_CHARS))
    events = [Event(e.name, masked_attributes(e.attributes), e.timestamp) for e in span.events]
    links = [Link(link.context, masked_attributes(link.attributes)) for link in span.links]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=masked_attributes(span.attributes),
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class MaskingExporter(SpanExporter):
    """Masks each span, then hands the batch to ``inner``."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([masked_span(s) for s in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)
