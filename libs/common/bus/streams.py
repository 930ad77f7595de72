"""What the platform keeps in JetStream, as data: its streams and its durable consumers.

The stream specs are derived from :class:`NatsSettings` alone, so every process that
reads the same ``IPAAS_NATS_*`` variables agrees on them; the provisioning step
(:mod:`libs.common.bus.provision`) creates or updates exactly these.  A durable
consumer's values belong to the service that reads it (the executor's come from
``ExecutorSettings``) and are handed in as a :class:`ConsumerSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nats.js import api as js_api

from libs.common.settings import NatsSettings

# WORKFLOW_CHANGES only feeds caches and schedulers that resync anyway: a week is plenty.
CHANGES_MAX_AGE_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    duplicate_window: float
    max_age: float | None = None
    max_bytes: int = -1
    retention: js_api.RetentionPolicy = js_api.RetentionPolicy.LIMITS
    discard: js_api.DiscardPolicy = js_api.DiscardPolicy.OLD


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """A durable pull consumer (explicit ack) and the values a service runs it with."""

    stream: str
    durable: str
    max_ack_pending: int
    ack_wait_seconds: float
    max_deliver: int

    def differences(self, config: js_api.ConsumerConfig) -> dict[str, Any]:
        """Fields where the server's ``config`` differs from this spec: name -> (server, wanted)."""
        found = {
            "max_ack_pending": (config.max_ack_pending, self.max_ack_pending),
            "ack_wait_seconds": (config.ack_wait, self.ack_wait_seconds),
            "max_deliver": (config.max_deliver, self.max_deliver),
        }
        return {k: list(v) for k, v in found.items() if v[0] is not None and v[0] != v[1]}


def platform_streams(s: NatsSettings) -> tuple[StreamSpec, ...]:
    """EVENTS (a bounded work queue refusing new messages when full), DLQ and WORKFLOW_CHANGES."""
    return (
        StreamSpec(
            s.events_stream,
            (s.events_subjects,),
            s.duplicate_window_seconds,
            max_age=s.events_max_age_seconds or None,
            max_bytes=s.events_max_bytes,
            retention=js_api.RetentionPolicy.WORK_QUEUE,
            discard=js_api.DiscardPolicy.NEW,
        ),
        StreamSpec(
            s.dlq_stream,
            (s.dlq_subjects,),
            s.duplicate_window_seconds,
            max_age=s.dlq_max_age_seconds or None,
            max_bytes=s.dlq_max_bytes,
        ),
        StreamSpec(
            s.changes_stream, (s.changes_subjects,), s.duplicate_window_seconds, max_age=CHANGES_MAX_AGE_SECONDS
        ),
    )
