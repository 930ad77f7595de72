"""The life of one event, from the message to the acked execution row.

1. claim the row by event_id (final rows: ack and stop); 2. re-read the
workflow at the pinned version (disabled/deleted: skipped); 3. resolve the
credential; 4. render templates; 5. run the connector under a timeout with
heartbeats; 6. write the outcome; 7. ack after it commits.

The ack of a finished event is ``ack_sync()`` by default: the server confirms
it, so a replica knows the event left the consumer. ``IPAAS_EXECUTOR_ACK_SYNC=false``
switches to a plain ``ack()`` (no round trip); that is safe too, because the
row is already final: a lost ack means a redelivery that finds the final row
and is acked without running again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from nats.aio.msg import Msg
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from libs.common.bus import Bus, BusUnavailable
from libs.common.models.events import DeadLetter, EventEnvelope, Trigger, dlq_subject
from libs.common.models.workflows import ScheduleTrigger, WorkflowDefinition
from libs.common.telemetry import ActiveSpan, current_trace_id, direct_tracer
from services.executor.breakers import Breakers
from services.executor.errors import ActionError, BreakerOpen, PermanentError, TransientError
from services.executor.fairness import TenantSlots, tenant_of
from services.executor.heartbeats import Heartbeats
from services.executor.metrics import ExecutorMetrics
from services.executor.retry import Backoff
from services.executor.runner import ActionRunner, safe_error
from services.executor.store import ExecutionStore, Outcome
from services.executor.templates import EventContext
from services.executor.workflows import WorkflowReader

log = logging.getLogger(__name__)
TRACER_NAME = "ipaas.executor"

BUSY_RETRY_SECONDS = 1.0
STORAGE_RETRY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    consumer: str
    max_attempts: int
    heartbeat_seconds: float
    fairness_delay_seconds: float
    ack_sync: bool = True


class EventWorker:
    def __init__(self, *, bus: Bus, store: ExecutionStore, workflows: WorkflowReader, runner: ActionRunner,
                 breakers: Breakers, slots: TenantSlots, backoff: Backoff, metrics: ExecutorMetrics,
                 options: WorkerOptions) -> None:
        self._bus, self._store, self._workflows, self._runner = bus, store, workflows, runner
        self._breakers, self._slots, self._backoff = breakers, slots, backoff
        self._metrics, self._opt = metrics, options
        self._heartbeats = Heartbeats(options.heartbeat_seconds)

    async def close(self) -> None:
        await self._heartbeats.close()

    async def handle(self, msg: Msg) -> None:
        """Entry point for the consumer: fairness first, decided from the subject alone."""
        tenant = tenant_of(msg.subject)
        if not self._slots.try_take(tenant):
            self._metrics.deferred.labels("fairness").inc()
            await msg.nak(delay=fairness_delay(self._opt.fairness_delay_seconds, _deliveries(msg)))
            return
        self._metrics.in_flight.inc()
        try:
            headers = msg.headers
            span = direct_tracer(TRACER_NAME).start_span(
                f"process {msg.subject}", context=propagate.extract(headers) if headers else None,
                kind=SpanKind.CONSUMER,
                attributes={"messaging.system": "nats", "messaging.destination.name": msg.subject,
                            "messaging.consumer.group.name": self._opt.consumer,
                            "messaging.operation.type": "process"},
            )
            with ActiveSpan(span):
                await self._process(msg)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            # Postgres (or an ack) unavailable: release the message for later instead of spinning on it.
            log.warning("storage unavailable; event released", extra={"error": type(exc).__name__,
                                                                       "subject": msg.subject})
            await msg.nak(delay=STORAGE_RETRY_SECONDS)
        finally:
            self._metrics.in_flight.dec()
            self._slots.release(tenant)

    async def _process(self, msg: Msg) -> None:
        try:
            event = EventEnvelope.model_validate_json(msg.data)
        except ValidationError:
            log.error("malformed event dropped", extra={"subject": msg.subject})
            await msg.term()
            return
        trace_id = current_trace_id()
        span = trace.get_current_span()
        span.set_attribute("messaging.message.id", str(event.event_id))
        loaded = await self._workflows.load(event.workflow_id, event.workflow_version)
        definition = loaded.definition
        skip = _skip_reason(event, loaded.state.tenant_id, loaded.state.is_active, loaded.state.deleted)
        if skip is None and definition is not None:
            try:
                self._breakers.peek(str(event.tenant_id), definition.action.type)
            except BreakerOpen as exc:
                self._metrics.deferred.labels("breaker").inc()
                await msg.nak(delay=exc.remaining)
                return
        claim = await self._store.claim(event, trace_id)
        if claim.busy:
            await msg.nak(delay=BUSY_RETRY_SECONDS)
            return
        if claim.attempts is None:
            await msg.ack_sync()  # already final: never run twice
            return
        attempts = claim.attempts
        base = Outcome(event=event, status="skipped", attempts=attempts, trace_id=trace_id)
        if skip is not None:
            await self._finish(msg, _with(base, error=skip), "none")
            return
        if definition is None:
            await self._dead(msg, _with(base, error=loaded.error or "workflow version not found"), "none")
            return
        if await self._overlaps(event, definition):
            await self._finish(msg, _with(base, error="skipped: the previous scheduled run is still running"),
                               definition.action.type)
            return
        await self._run(msg, event, definition, base)

    async def _overlaps(self, event: EventEnvelope, definition: WorkflowDefinition) -> bool:
        trig = definition.trigger
        if event.trigger != Trigger.SCHEDULE or not isinstance(trig, ScheduleTrigger) or trig.overlap != "skip":
            return False
        return await self._store.overlapping_run(event.workflow_id, event.event_id)

    async def _run(self, msg: Msg, event: EventEnvelope, definition: WorkflowDefinition, base: Outcome) -> None:
        action_type = definition.action.type
        tenant = str(event.tenant_id)
        started = time.perf_counter()
        trial = False
        admitted = False
        with self._heartbeats.hold(msg):
            try:
                call = await self._runner.prepare(
                    tenant_id=event.tenant_id, event_id=event.event_id, definition=definition,
                    payload=event.payload, event=EventContext(event))
                trial = self._breakers.admit(tenant, action_type)
                admitted = True
                output = await self._runner.call(action_type, call)
            except BreakerOpen as exc:
                self._metrics.deferred.labels("breaker").inc()
                await self._store.finish(_with(base, status="failed", attempts_delta=-1,
                                               error=safe_error(f"deferred: {exc}")))
                await msg.nak(delay=exc.remaining)
                return
            except PermanentError as exc:
                if admitted:
                    self._breakers.release(tenant, action_type, trial=trial)
                await self._dead(msg, _with(base, error=safe_error(exc.message), duration_ms=_ms(started)),
                                 action_type)
                return
            except TransientError as exc:
                if admitted:
                    self._breakers.failure(tenant, action_type, trial=trial)
                await self._retry_or_dead(msg, base, exc, started, action_type)
                return
            except asyncio.CancelledError:
                if admitted:
                    self._breakers.release(tenant, action_type, trial=trial)
                raise
            except Exception as exc:  # noqa: BLE001 - an unexpected failure is retried, never lost
                log.exception("action failed unexpectedly", extra={"event_id": str(event.event_id)})
                if admitted:
                    self._breakers.failure(tenant, action_type, trial=trial)
                await self._retry_or_dead(msg, base, TransientError(f"internal error: {type(exc).__name__}"),
                                          started, action_type)
                return
        self._breakers.success(tenant, action_type, trial=trial)
        self._metrics.observe_duration(action_type, time.perf_counter() - started)
        await self._finish(msg, _with(base, status="succeeded", duration_ms=_ms(started),
                                      output=self._runner.safe_output(output)), action_type)

    async def _retry_or_dead(self, msg: Msg, base: Outcome, exc: ActionError, started: float,
                             action_type: str) -> None:
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        self._metrics.observe_duration(action_type, time.perf_counter() - started)
        if base.attempts >= self._opt.max_attempts:
            reason = f"gave up after {base.attempts} attempts: {exc.message}"
            await self._dead(msg, _with(base, error=safe_error(reason), duration_ms=_ms(started)), action_type)
            return
        delay = self._backoff.delay(base.attempts, retry_after)
        await self._store.finish(_with(base, status="failed", error=safe_error(exc.message),
                                       duration_ms=_ms(started)))
        self._metrics.count(action_type, "failed")
        log.info("try failed; retrying", extra={"event_id": str(base.event.event_id), "attempt": base.attempts,
                                                "retry_in_s": round(delay, 3)})
        await msg.nak(delay=delay)

    async def _dead(self, msg: Msg, outcome: Outcome, action_type: str) -> None:
        outcome = _with(outcome, status="dead")
        await self._store.finish(outcome)
        self._metrics.dead_letters.labels(action_type).inc()
        letter = DeadLetter(event=outcome.event, reason=outcome.error or "dead", attempts=outcome.attempts)
        ev = outcome.event
        try:
            await self._bus.publish(dlq_subject(ev.tenant_id, ev.workflow_id), letter.model_dump_json().encode(),
                                    msg_id=f"dlq:{ev.event_id}:{outcome.attempts}")
        except BusUnavailable:
            log.warning("dead letter recorded but not published", extra={"event_id": str(ev.event_id)})
        log.warning("event dead-lettered", extra={"event_id": str(ev.event_id), "reason": outcome.error})
        await self._ack(msg, outcome, action_type)

    async def _finish(self, msg: Msg, outcome: Outcome, action_type: str) -> None:
        await self._store.finish(outcome)
        await self._ack(msg, outcome, action_type)

    async def _ack(self, msg: Msg, outcome: Outcome, action_type: str) -> None:
        self._metrics.count(action_type, outcome.status)
        try:
            if self._opt.ack_sync:
                await msg.ack_sync()
            else:
                await msg.ack()
        except Exception:  # noqa: BLE001 - the row is final: a redelivery is acked without running
            log.warning("ack failed; the redelivery will find the final row", exc_info=True)


# A deferred event waits base * 2^(deliveries-1), at most this many doublings (base 1 s: 1, 2, 4, 8 s).
FAIRNESS_MAX_DOUBLINGS = 3


def fairness_delay(base: float, deliveries: int) -> float:
    """NAK delay for an over-share event on its n-th delivery.

    Growing with each deferral keeps a storm's parked events from coming back
    every second and crowding the consumer's look-ahead, so the fetch reaches
    other tenants' events behind the storm sooner.
    """
    doublings: int = min(max(deliveries - 1, 0), FAIRNESS_MAX_DOUBLINGS)
    return base * float(1 << doublings)


def _deliveries(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered or 1)
    except Exception:  # noqa: BLE001 - a message without JetStream metadata counts as a first delivery
        return 1


def _skip_reason(event: EventEnvelope, tenant_id: Any, is_active: bool, deleted: bool) -> str | None:
    if tenant_id is None or tenant_id != event.tenant_id:
        return "skipped: workflow not found"
    if deleted:
        return "skipped: workflow was deleted"
    if not is_active:
        return "skipped: workflow is disabled"
    return None


def _with(outcome: Outcome, **changes: Any) -> Outcome:
    return dataclasses.replace(outcome, **changes)


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
