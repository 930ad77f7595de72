"""The life of one event, from the message to the acked execution row.

1. **Admission** (:mod:`services.executor.fairness`): a slot for the tenant,
   or the event is parked at once (its tenant's work is slow and over its share).
2. **Heartbeats** cover everything from here to the ack (``in_progress()``
   and the lease).
3. **Envelope**: a message that is not a valid envelope is dead-lettered with
   its raw bytes and the reason (never dropped).
4. **Claim** under a lease, reading the workflow's state in the same statement;
   :func:`services.executor.decide.after_claim` decides: ack (final, or parked
   elsewhere), park (another replica's live lease), skip, dead, or run.
5. **Try**: breaker admission, credential, templates, connector under a
   timeout; :func:`services.executor.decide.after_try` decides the outcome.
   A multi-step workflow's try is :class:`services.executor.steps.StepRunner`'s:
   from the first unsettled step on, each step checkpointed before the next.
6. **Finish**: the outcome is written until the write commits (a failed write
   never causes a second run); a retry parks the event for its backoff in the
   same transaction.  Then the message is acked.

A message is acked or NAKed only by :meth:`EventWorker._settle`, called by :meth:`EventWorker._carry_out`
(the decision) and by the paths that decide nothing: an undecodable message, Postgres unreachable, a
fairness deferral.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from libs.common.bus import Bus, BusError, Message
from libs.common.bus.tracing import consumer_span
from libs.common.db.errors import STORAGE_ERRORS
from libs.common.db.tracing import db_span
from libs.common.logs.redaction import Redactor, redacting
from libs.common.models.events import DeadLetter, EventEnvelope, Trigger, UndecodableEvent, dlq_subject
from libs.common.models.workflows import ScheduleTrigger, WorkflowDefinition
from libs.common.telemetry import ActiveSpan, current_trace_id
from services.executor.breakers import Breakers, NotCalled
from services.executor.decide import Ack, ClaimView, Fate, Finish, Park, Run, TryResult, after_claim, after_try
from services.executor.deferred import DEFERRALS_HEADER, Waker
from services.executor.envelopes import (
    EnvelopeError,
    parse_envelope,
    subject_ids,
    trace_headers,
    undecodable_event_id,
)
from services.executor.errors import BreakerOpen, PermanentError, TransientError
from services.executor.fairness import TenantSlots, tenant_of
from services.executor.heartbeats import Heartbeats, Held
from services.executor.metrics import ExecutorMetrics
from services.executor.retry import Backoff
from services.executor.runner import ActionRunner, safe_error
from services.executor.settings import ExecutorSettings
from services.executor.steps import StepCall, StepRunner, elapsed_ms, until_stored
from services.executor.store import ExecutionStore, Outcome, Parcel, Parking, Tried, Unclaimable
from services.executor.templates import CONFIG_PATH, EventContext
from services.executor.workflows import WorkflowReader

log = logging.getLogger(__name__)
# The attempt this delivery is, as the claim counts it (a retry comes back as a new JetStream message).
ATTEMPT_ATTRIBUTE = "ipaas.execution.attempt"

# Postgres unreachable: the message goes back to JetStream for this long (nothing can progress meanwhile).
STORAGE_RETRY_SECONDS = 2.0
RELEASE_TIMEOUT_SECONDS = 1.0


class EventWorker:
    def __init__(
        self,
        *,
        bus: Bus,
        store: ExecutionStore,
        workflows: WorkflowReader,
        runner: ActionRunner,
        breakers: Breakers,
        slots: TenantSlots,
        backoff: Backoff,
        metrics: ExecutorMetrics,
        waker: Waker,
        settings: ExecutorSettings,
    ) -> None:
        self._bus, self._store, self._workflows, self._runner = bus, store, workflows, runner
        self._breakers, self._slots, self._backoff = breakers, slots, backoff
        self._metrics, self._waker, self._settings = metrics, waker, settings
        self._heartbeats = Heartbeats(settings.heartbeat_seconds, renew=store.renew)
        self._steps = StepRunner(
            store=store,
            runner=runner,
            call=self._call_step,
            backoff=backoff,
            max_attempts=settings.max_attempts,
            output_limit=settings.step_output_max_bytes,
        )

    async def close(self) -> None:
        await self._heartbeats.close()

    async def handle(self, msg: Message) -> None:
        """Entry point for the consumer: admission first, decided from the subject alone."""
        tenant = tenant_of(msg.subject)
        token = await self._slots.acquire(tenant, behind=_pending(msg))
        if token is None:
            await self._defer_for_fairness(msg)
            return
        self._metrics.in_flight.inc()
        try:
            with self._heartbeats.hold(msg) as held:
                try:
                    await self._traced(msg, held)
                except asyncio.CancelledError:
                    await self._release_lease(held)
                    raise
        finally:
            self._metrics.in_flight.dec()
            self._slots.release(tenant, token)

    async def _traced(self, msg: Message, held: Held) -> None:
        # A CONSUMER ``process EVENTS`` span, child of the publish that the message's headers name.
        span = consumer_span(msg, self._bus.streams.of(msg.subject), self._settings.consumer)
        # The event's secrets, once resolved: kept out of its outcome, its log lines and its span.
        redactor = Redactor()
        with redacting(redactor), ActiveSpan(span):
            try:
                await self._process(msg, held, redactor)
            except STORAGE_ERRORS as exc:
                # Postgres away before anything was decided: the message goes back for later.
                log.warning(
                    "storage unavailable; event released", extra={"error": type(exc).__name__, "subject": msg.subject}
                )
                await self._release_lease(held)
                await self._settle(msg, nak_in=STORAGE_RETRY_SECONDS)

    async def _read(self, msg: Message) -> tuple[EventEnvelope, Parcel] | None:
        """The event and its parcel (kept to put it back); None once a message that is no event is dead-lettered."""
        try:
            event = parse_envelope(msg.subject, msg.data)
        except EnvelopeError as exc:
            await self._undecodable(msg, str(exc))
            return None
        return event, Parcel(msg.subject, msg.data, trace_headers(msg.headers))

    async def _process(self, msg: Message, held: Held, redactor: Redactor) -> None:
        read = await self._read(msg)
        if read is None:
            return
        event, parcel = read
        trace_id = current_trace_id()
        span = trace.get_current_span()
        span.set_attribute("ipaas.event_id", str(event.event_id))
        loaded = await self._workflows.load(event.workflow_id, event.workflow_version)
        with ActiveSpan(db_span("INSERT", "executions", "claim")):
            claim = await self._claim(event, trace_id, held)
        if isinstance(claim, Unclaimable):
            await self._undecodable(msg, claim.reason, event=event)
            return
        if claim.attempt is not None:
            span.set_attribute(ATTEMPT_ATTRIBUTE, claim.attempt)
        definition = loaded.definition
        connector = _connector_label(definition)
        fate: Fate = after_claim(
            claim, event_tenant=event.tenant_id, has_definition=definition is not None, definition_error=loaded.error
        )
        output: Any = None
        duration_ms: int | None = None
        tried: Tried | None = None
        if isinstance(fate, Run) and definition is not None:
            if await self._overlaps(event, definition):
                fate = Finish("skipped", "skipped: the previous scheduled run is still running")
            else:
                fate, output, duration_ms, tried = await self._try(event, definition, fate.attempt, redactor)
        await self._carry_out(
            msg,
            held,
            event,
            parcel,
            fate,
            connector,
            attempt=claim.attempt or 0,
            trace_id=trace_id,
            output=output,
            duration_ms=duration_ms,
            tried=tried,
            redactor=redactor,
        )

    async def _claim(self, event: EventEnvelope, trace_id: str | None, held: Held) -> ClaimView | Unclaimable:
        """The claim; ``held`` names the event once its row is this replica's.

        Cancelled while the claim is being written (the grace ended), the statement
        still commits: wait for it, briefly, so that :meth:`handle` releases the
        lease it took instead of leaving it to expire under the NAKed message.
        """
        claiming = asyncio.ensure_future(self._store.claim(event, trace_id))
        try:
            claim = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                late = await asyncio.wait_for(asyncio.shield(claiming), RELEASE_TIMEOUT_SECONDS)
                if not isinstance(late, Unclaimable) and late.attempt is not None:
                    held.event_id = event.event_id
            raise
        if not isinstance(claim, Unclaimable) and claim.attempt is not None:
            held.event_id = event.event_id
        return claim

    async def _overlaps(self, event: EventEnvelope, definition: WorkflowDefinition) -> bool:
        trig = definition.trigger
        if event.trigger != Trigger.SCHEDULE or not isinstance(trig, ScheduleTrigger) or trig.overlap != "skip":
            return False
        return await self._store.overlapping_run(event.workflow_id, event.event_id)

    async def _try(
        self, event: EventEnvelope, definition: WorkflowDefinition, attempt: int, redactor: Redactor
    ) -> tuple[Finish, Any, int, Tried]:
        """One try; returns the decided outcome, the output, the duration and the history row.

        A multi-step workflow's try runs from its first unsettled step on (see :mod:`services.executor.steps`).
        """
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        if definition.steps is not None:
            ran = await self._steps.run(event, definition.steps, redactor, attempt=attempt)
            finish, output, http_status = ran.finish, ran.output, ran.http_status
        else:
            step = StepCall(definition.first_action(), str(event.event_id), {}, CONFIG_PATH, None)
            result, output = await self._call_step(event, step, redactor)
            backoff = self._backoff.delay(attempt, result.retry_after)
            finish = after_try(result, attempt=attempt, max_attempts=self._settings.max_attempts, backoff=backoff)
            http_status = result.http_status
        duration = elapsed_ms(started)
        return finish, output, duration, Tried(started_at, http_status)

    async def _call_step(self, event: EventEnvelope, step: StepCall, redactor: Redactor) -> tuple[TryResult, Any]:
        """One action step's call, timed into the connector's duration metric (a breaker refusal is counted)."""
        action_type = step.action.type
        started = time.perf_counter()
        result, output = await self._call(event, step, redactor)
        if result.kind == "breaker":
            self._metrics.breaker_refusals.labels(action_type).inc()
        else:
            self._metrics.observe_duration(action_type, time.perf_counter() - started)
        return result, output

    async def _call(self, event: EventEnvelope, step: StepCall, redactor: Redactor) -> tuple[TryResult, Any]:
        tenant, action_type = str(event.tenant_id), step.action.type
        try:
            async with self._breakers(tenant, action_type):
                try:
                    call = await self._runner.prepare_action(
                        step.action,
                        tenant_id=event.tenant_id,
                        key=step.key,
                        payload=event.payload,
                        event=EventContext(event),
                        extra=step.extra,
                        where=step.where,
                    )
                except Exception as exc:
                    raise NotCalled(exc) from exc  # credential or template: nothing said about the target
                redactor.add_secret(call.secret)
                output = await self._runner.call(action_type, call, timeout=step.timeout)
        except BreakerOpen as exc:
            # Spread over up to one more reset period (at most 30 s): a storm's parked events come back over
            # that time, not all at the moment the breaker lets its one trial through.
            spread = random.uniform(0, min(self._breakers.reset_seconds, 30.0))
            return TryResult(
                "breaker",
                f"circuit open for {action_type}: recent tries failed; the target was not called",
                breaker_left=exc.remaining + spread,
            ), None
        except (NotCalled, PermanentError, TransientError) as exc:
            return _failed(exc.cause if isinstance(exc, NotCalled) else exc), None
        except Exception as exc:
            log.exception("action failed unexpectedly", extra={"event_id": str(event.event_id)})
            return TryResult("transient", f"internal error: {type(exc).__name__}"), None
        status = output.get("status") if isinstance(output, dict) else None
        return TryResult("ok", http_status=status if isinstance(status, int) else None), output

    # --- carrying the decision out: the only places that ack, nak or park ------------------------------

    async def _carry_out(
        self,
        msg: Message,
        held: Held,
        event: EventEnvelope,
        parcel: Parcel,
        fate: Fate,
        connector: str,
        *,
        attempt: int,
        trace_id: str | None,
        output: Any = None,
        duration_ms: int | None = None,
        tried: Tried | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        if isinstance(fate, Ack):
            await self._settle(msg)
            return
        if isinstance(fate, Park):
            await self._park(msg, Parking(event.event_id, event.tenant_id, parcel, fate.seconds, fate.reason))
            return
        assert isinstance(fate, Finish)
        park = None
        if fate.retry_in is not None:
            park = Parking(event.event_id, event.tenant_id, parcel, fate.retry_in, "retry")
        # The input is kept once per event: sent with its first outcome, and with a final one.
        keep_input = attempt <= 1 or fate.status != "failed"
        outcome = Outcome(
            event=event,
            status=fate.status,
            parcel=parcel,
            attempts=attempt,
            duration_ms=duration_ms,
            error=safe_error(fate.error, redactor=redactor) if fate.error else None,
            output=self._runner.safe_output(output, redactor) if output is not None else None,
            trace_id=trace_id,
            park=park,
            tried=tried,
            input=self._runner.safe_input(event.payload) if keep_input else None,
        )
        with ActiveSpan(db_span("UPDATE", "executions", "finish")):
            written = await self._write(outcome)
        held.event_id = None  # the lease ended with the write
        if not written.stored:
            # Another replica took the row over (this one lost its lease): let the message come back later.
            self._metrics.lease_lost.inc()
            log.warning("lease lost before the outcome was written", extra={"event_id": str(event.event_id)})
            await self._settle(msg, nak_in=self._settings.lease_seconds)
            return
        self._metrics.count(connector, written.status)
        log.debug(
            "outcome written", extra={"event_id": str(event.event_id), "status": written.status, "attempt": attempt}
        )
        if written.status == "dead":
            await self._publish_dead_letter(event, written.error or "dead", attempt, connector, _stream_seq(msg))
        elif park is not None:
            self._metrics.deferred.labels("retry").inc()
            self._waker.due_in(park.seconds)
            log.debug(
                "try failed; retrying",
                extra={"event_id": str(event.event_id), "attempt": attempt, "retry_in_s": round(park.seconds, 3)},
            )
        await self._settle(msg)

    async def _write(self, outcome: Outcome) -> Any:
        """Write the outcome until it commits: the action ran, so a failed write must not run it again."""
        return await until_stored(
            lambda: self._store.finish(outcome), "outcome", {"event_id": str(outcome.event.event_id)}
        )

    async def _park(self, msg: Message, parking: Parking) -> None:
        try:
            with ActiveSpan(db_span("INSERT", "deferred_events", "park")):
                await self._store.park(parking)
        except STORAGE_ERRORS as exc:
            log.warning(
                "could not park event; released to the stream",
                extra={"event_id": str(parking.event_id), "error": type(exc).__name__},
            )
            await self._settle(msg, nak_in=min(parking.seconds, STORAGE_RETRY_SECONDS) or STORAGE_RETRY_SECONDS)
            return
        self._metrics.deferred.labels(parking.reason).inc()
        self._waker.due_in(parking.seconds)
        # A plain ack (no round trip) is enough: if it were lost, the redelivery is parked again or finds
        # the row, and the parked copy is deduplicated by the claim.
        await self._settle(msg, confirm=False)

    async def _defer_for_fairness(self, msg: Message) -> None:
        read = await self._read(msg)
        if read is None:
            return
        event, parcel = read
        deferrals = _deferrals(msg) + 1
        seconds = fairness_delay(self._settings.fairness_delay_seconds, deferrals)
        await self._park(msg, Parking(event.event_id, event.tenant_id, parcel, seconds, "fairness", deferrals))

    async def _undecodable(self, msg: Message, reason: str, *, event: EventEnvelope | None = None) -> None:
        """Not an event this executor can run: a dead letter with the raw bytes and the reason, then ack."""
        tenant, workflow = subject_ids(msg.subject)
        if event is not None:
            tenant, workflow = event.tenant_id, event.workflow_id
        event_id = event.event_id if event is not None else undecodable_event_id(msg.subject, msg.data)
        log.error(
            "event cannot be run; dead-lettered",
            extra={"subject": msg.subject, "reason": reason, "event_id": str(event_id)},
        )
        if tenant is not None and workflow is not None:
            try:
                await self._store.dead_letter_raw(event_id, tenant, workflow, reason, msg.data)
            except STORAGE_ERRORS:
                await self._settle(msg, nak_in=STORAGE_RETRY_SECONDS)
                return
        self._metrics.dead_letters.labels("none").inc()
        body = (
            UndecodableEvent(subject=msg.subject, reason=reason, raw_base64=base64.b64encode(msg.data).decode())
            .model_dump_json()
            .encode()
        )
        subject = dlq_subject(tenant or "unknown", workflow or "unknown")
        with contextlib.suppress(BusError):
            await self._bus.publish(subject, body, msg_id=f"dlq:{event_id}:raw")
        await self._settle(msg)

    async def _publish_dead_letter(
        self, event: EventEnvelope, reason: str, attempts: int, connector: str, seq: int
    ) -> None:
        """The dead letter's copy in DLQ. Its id names the EVENTS message that died (``seq``): a redelivery of
        that message is the same letter (JetStream keeps one), a replay that dies again is a new one."""
        self._metrics.dead_letters.labels(connector).inc()
        letter = DeadLetter(event=event, reason=reason, attempts=attempts)
        try:
            await self._bus.publish(
                dlq_subject(event.tenant_id, event.workflow_id),
                letter.model_dump_json().encode(),
                msg_id=f"dlq:{event.event_id}:{attempts}:{seq}",
            )
        except BusError:
            log.warning("dead letter recorded but not published", extra={"event_id": str(event.event_id)})
        log.warning("event dead-lettered", extra={"event_id": str(event.event_id), "reason": reason})

    async def _release_lease(self, held: Held) -> None:
        """This replica stops working on the event: free its lease so another replica may claim it now."""
        event_id, held.event_id = held.event_id, None
        if event_id is None:
            return
        try:
            released = await asyncio.wait_for(asyncio.shield(self._store.release([event_id])), RELEASE_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the lease then ends by itself; the message is NAKed anyway
            log.warning(
                "lease not released; it ends at its expiry",
                extra={"event_id": str(event_id), "error": type(exc).__name__},
            )
            return
        if released:  # none when the outcome was written just before: nothing is handed over
            log.info("event released", extra={"event_id": str(event_id)})

    async def _settle(self, msg: Message, *, nak_in: float | None = None, confirm: bool = True) -> None:
        """The one place a message is acked or NAKed (``nak_in``: back to the stream after that long).

        A lost ack or NAK only means a redelivery, which finds the row (or is parked again).
        """
        try:
            if nak_in is not None:
                await msg.nak(delay=nak_in)
            elif confirm and self._settings.ack_sync:
                await msg.ack_sync()
            else:
                await msg.ack()
        except Exception:
            if nak_in is None:
                log.warning("ack failed; the redelivery will find the row", exc_info=True)
            else:
                log.debug("nak failed", exc_info=True)


# A deferred event waits base * 2^(deferrals-1), at most this many doublings (base 1 s: 1, 2, 4, 8 s).
FAIRNESS_MAX_DOUBLINGS = 3


def fairness_delay(base: float, deferrals: int) -> float:
    """How long an event over its tenant's share waits on its n-th deferral.

    Growing with each deferral keeps a slow tenant's backlog from cycling through the
    stream every second.
    """
    doublings: int = min(max(deferrals - 1, 0), FAIRNESS_MAX_DOUBLINGS)
    return base * float(1 << doublings)


def _connector_label(definition: WorkflowDefinition | None) -> str:
    """The ``connector`` label of an event's metrics: the action's type, ``steps`` for a multi-step workflow."""
    if definition is None:
        return "none"
    if definition.steps is not None:
        return "steps"
    return str(definition.first_action().type)


def _failed(exc: BaseException) -> TryResult:
    """A try that raised ``exc``: an action error maps to its kind; anything else (a bug) is raised again."""
    if isinstance(exc, PermanentError):
        return TryResult("permanent", exc.message, http_status=exc.http_status)
    if isinstance(exc, TransientError):
        return TryResult("transient", exc.message, retry_after=exc.retry_after, http_status=exc.http_status)
    raise exc


def _stream_seq(msg: Message) -> int:
    """The message's sequence in its stream (0 when it has none: not a JetStream delivery)."""
    try:
        return int(msg.metadata.sequence.stream)
    except Exception:  # noqa: BLE001 - no ack subject to read it from
        return 0


def _pending(msg: Message) -> int | None:
    """How many messages the consumer had not delivered yet when ``msg`` was (None: not a JetStream delivery)."""
    try:
        return int(msg.metadata.num_pending)
    except Exception:  # noqa: BLE001 - no ack subject to read it from
        return None


def _deferrals(msg: Message) -> int:
    try:
        return int((msg.headers or {}).get(DEFERRALS_HEADER, 0))
    except ValueError:
        return 0
