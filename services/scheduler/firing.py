"""Publishing one slot: the event envelope, its dedup id, its metrics; the bus adds its span.

The dedup id is ``sched:<workflow_id>:<slot>`` with no version, so every replica
publishing a slot (whatever version it holds) lands on the same JetStream
message id and the same ``event_id``.
"""

from __future__ import annotations

import logging
import uuid

from libs.common.bus import Bus, BusError
from libs.common.models.events import EventEnvelope, Trigger, event_id_for, schedule_dedup_key
from services.scheduler.clock import Clock
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.slots import slot_datetime, slot_iso
from services.scheduler.store import ScheduleSpec

log = logging.getLogger(__name__)


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

    def envelope(self, spec: ScheduleSpec, slot: int, version: int) -> EventEnvelope:
        key = self.dedup_key(spec.workflow_id, slot)
        return EventEnvelope(
            event_id=event_id_for(spec.workflow_id, key),
            dedup_key=key,
            tenant_id=spec.tenant_id,
            workflow_id=spec.workflow_id,
            workflow_version=version,
            trigger=Trigger.SCHEDULE,
            payload={"scheduled_for": slot_iso(slot)},
            received_at=self._clock.now(),
            scheduled_for=slot_datetime(slot),
        )

    async def publish(self, spec: ScheduleSpec, slot: int, version: int) -> bool:
        """Publish the slot's event, carrying ``version``; ``False`` if NATS could not store it (the caller retries).

        ``version`` is the version current at the slot (see :mod:`services.scheduler.versions`),
        usually but not always ``spec.version``.
        """
        env = self.envelope(spec, slot, version)
        # The event's trace starts at the bus's PRODUCER span (a slot is published outside any span).
        attributes = {"ipaas.workflow_id": str(spec.workflow_id), "ipaas.event_id": str(env.event_id)}
        try:
            result = await self._bus.publish(env.subject, env.model_dump_json().encode(), msg_id=env.msg_id,
                                             attributes=attributes)
        except BusError as exc:
            self._metrics.publish_failures.inc()
            log.warning("publishing a slot failed; will retry",
                        extra={"workflow_id": str(spec.workflow_id), "slot": slot_iso(slot), "error": str(exc)})
            return False
        lateness = self._clock.now().timestamp() - slot
        # The slot's trace as exemplar (OpenMetrics scrapes show it): a late bucket leads to its trace.
        self._metrics.lateness.observe(max(0.0, lateness),
                                       {"trace_id": result.trace_id} if result.trace_id else None)
        self._metrics.fires.labels("duplicate" if result.duplicate else "published").inc()
        fields = {"workflow_id": str(spec.workflow_id), "version": version, "slot": slot_iso(slot),
                  "event_id": str(env.event_id), "duplicate": result.duplicate, "lateness_s": round(lateness, 3)}
        log.log(logging.DEBUG if result.duplicate else logging.INFO, "slot fired", extra=fields)
        return True
