"""Publishing slots: the event envelope, its dedup id, its span and metrics.

The dedup id is ``sched:<workflow_id>:<slot>`` with no version, so every replica
publishing a slot (whatever version it holds) lands on the same JetStream
message id and the same ``event_id``.

A slot's due fires go out together (:meth:`Publisher.publish_many`): every
message is sent at once with a bounded number of PubAcks outstanding
(:meth:`Bus.publish_batch`), each with its own PRODUCER span that ends when its
PubAck arrives.  One log line per batch says what happened; each fire's own
line is at DEBUG.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode

from libs.common.bus import Bus, BusError, PublishResult
from libs.common.bus.batch import Outgoing
from libs.common.bus.client import MSG_ID_HEADER
from libs.common.bus.tracing import producer_span
from libs.common.models.events import EventEnvelope, Trigger, event_id_for, schedule_dedup_key
from services.scheduler.clock import Clock
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.slots import slot_datetime, slot_iso
from services.scheduler.store import ScheduleSpec

log = logging.getLogger(__name__)
ROOT = Context()  # an empty context: each fired event starts a trace of its own


@dataclass(frozen=True, slots=True)
class Prepared:
    """A slot's event, built ahead of time for one version."""

    slot: int
    version: int
    message: Outgoing


class Publisher:
    def __init__(self, bus: Bus, clock: Clock, metrics: SchedulerMetrics) -> None:
        self._bus = bus
        self._clock = clock
        self._metrics = metrics

    @staticmethod
    def dedup_key(workflow_id: uuid.UUID, slot: int) -> str:
        return schedule_dedup_key(workflow_id, slot_iso(slot))

    def event_id(self, spec: ScheduleSpec, slot: int) -> uuid.UUID:
        return event_id_for(spec.workflow_id, self.dedup_key(spec.workflow_id, slot))

    def envelope(
        self,
        spec: ScheduleSpec,
        slot: int,
        version: int,
        *,
        slot_text: str | None = None,
        received_at: datetime | None = None,
    ) -> EventEnvelope:
        iso = slot_text if slot_text is not None else slot_iso(slot)
        key = schedule_dedup_key(spec.workflow_id, iso)
        # Every field is already of its type: construct without validating again (same JSON).
        return EventEnvelope.model_construct(
            event_id=event_id_for(spec.workflow_id, key),
            dedup_key=key,
            tenant_id=spec.tenant_id,
            workflow_id=spec.workflow_id,
            workflow_version=version,
            trigger=Trigger.SCHEDULE,
            payload={"scheduled_for": iso},
            received_at=received_at if received_at is not None else self._clock.now(),
            scheduled_for=slot_datetime(slot),
        )

    def prepare(self, spec: ScheduleSpec, slot: int, version: int) -> Prepared:
        """The slot's event as it will be sent (its ``received_at`` is the slot: the same bytes on every replica)."""
        env = self.envelope(spec, slot, version, received_at=slot_datetime(slot))
        message = Outgoing(env.subject, env.to_json(), {MSG_ID_HEADER: env.msg_id})
        return Prepared(slot, version, message)

    async def publish_many(
        self, fires: Sequence[tuple[ScheduleSpec, int, int, Prepared | None]], *, window: int, checked_s: float = 0.0
    ) -> list[bool]:
        """Publish each ``(spec, slot, version, prepared)`` at once; per fire ``True`` once stored (or already stored).

        ``prepared`` is used when it was built for that slot and version, else the event is built now.
        ``False``: NATS did not store it (the caller retries that fire).  At most ``window``
        PubAcks are awaited at a time.  ``checked_s``: how long the version check took (logged).
        """
        ok = [False] * len(fires)
        if not fires:
            return ok
        messages: list[Outgoing] = []
        spans: list[trace.Span] = []
        texts: dict[int, str] = {}
        stream = self._bus.settings.events_stream
        for spec, slot, version, prepared in fires:
            if prepared is None or prepared.slot != slot or prepared.version != version:
                iso = texts.get(slot)
                if iso is None:
                    iso = texts[slot] = slot_iso(slot)
                env = self.envelope(spec, slot, version, slot_text=iso, received_at=slot_datetime(slot))
                out = Outgoing(env.subject, env.to_json(), {MSG_ID_HEADER: env.msg_id})
            else:
                out = prepared.message
            # Each event's own trace starts at its PRODUCER span (a root: a slot is fired outside any span).
            span = producer_span(
                stream,
                out.subject,
                out.headers.get(MSG_ID_HEADER),
                parent=ROOT,
                attributes={"ipaas.workflow_id": str(spec.workflow_id)},
            )
            carrier = dict(out.headers)
            propagate.inject(carrier, context=trace.set_span_in_context(span))
            spans.append(span)
            messages.append(Outgoing(out.subject, out.payload, carrier))
        tally = {"published": 0, "duplicate": 0, "failed": 0}
        counters = {result: self._metrics.fires.labels(result) for result in ("published", "duplicate")}
        first_error: list[str] = []
        worst = [0.0]

        def on_outcome(i: int, outcome: PublishResult | BusError) -> None:
            spec, slot, version, _ = fires[i]
            span = spans[i]
            if isinstance(outcome, BusError):
                self._metrics.publish_failures.inc()
                tally["failed"] += 1
                if not first_error:
                    first_error.append(f"{type(outcome).__name__}: {outcome}")
                span.set_status(Status(StatusCode.ERROR, type(outcome).__name__))
                span.end()
                return
            span.end()
            ok[i] = True
            lateness = self._clock.now().timestamp() - slot
            worst[0] = max(worst[0], lateness)
            # The slot's trace as exemplar (OpenMetrics scrapes show it): a late bucket leads to its trace.
            trace_id = format(span.get_span_context().trace_id, "032x")
            self._metrics.lateness.observe(max(0.0, lateness), {"trace_id": trace_id})
            result = "duplicate" if outcome.duplicate else "published"
            tally[result] += 1
            counters[result].inc()
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "slot fired",
                    extra={
                        "workflow_id": str(spec.workflow_id),
                        "version": version,
                        "slot": slot_iso(slot),
                        "duplicate": outcome.duplicate,
                        "lateness_s": round(lateness, 3),
                    },
                )

        try:
            await self._bus.publish_batch(messages, on_outcome, window=window)
        finally:
            for span in spans:  # those whose PubAck never came (cancelled): ended as failed
                if span.is_recording():
                    span.set_status(Status(StatusCode.ERROR, "not acknowledged"))
                    span.end()
        fields = {
            "slots": len(fires),
            **tally,
            "max_lateness_s": round(worst[0], 3),
            "version_check_s": round(checked_s, 3),
            "first_slot": slot_iso(min(slot for _, slot, _, _ in fires)),
        }
        if tally["failed"]:
            log.warning("publishing slots failed; will retry", extra={**fields, "error": first_error[0]})
        else:
            log.info("slots fired", extra=fields)
        return ok
