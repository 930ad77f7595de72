"""What a JetStream publish comes back with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PublishResult:
    stream: str
    seq: int
    duplicate: bool
    # The trace the message travels in (set by :meth:`Bus.publish`, which makes its span), for exemplars.
    trace_id: str | None = None
    # The ``traceparent`` header the message carries (set by :meth:`Bus.publish_event`), for a response header.
    traceparent: str | None = None
