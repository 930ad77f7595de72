"""Multi-step workflows: run the steps in order from the first one not settled, one checkpoint each.

Invariants:

- **Checkpoint before the next step.** Each step's outcome and (capped) output is written to
  ``execution_steps`` before the next step starts, and only while this replica holds the event's
  lease (:meth:`services.executor.store.ExecutionStore.checkpoint`).  A write that fails on storage is
  tried again until it commits: the step ran, and a lost record would run it again.
- **A settled step never runs again.** A try (a retry, a redelivery, a replay) starts from the
  checkpoints: steps that succeeded (or failed and were passed over with ``continue_on_error``) give
  their kept output to later templates (``steps.<id>.output``) and are not called.  The first other
  step runs; its attempts count on from its checkpoint.
- **A step that gave up** ends a later try of the same run ``dead`` without a call (its finish
  was lost); a DLQ replay (its count of attempts starts at 1 again) runs it again.
- **Per-step policy.** A step's ``retry.max_attempts`` (default ``IPAAS_EXECUTOR_MAX_ATTEMPTS``) and
  ``retry.backoff_seconds`` decide its retries, its ``timeout_seconds`` bounds its call.  A failed try
  parks the whole event (the usual retry); a step that gives up ends the execution ``dead``, unless it
  has ``continue_on_error``: then it is recorded ``failed`` (``continued``) and the next step runs.
- **Filters.** A filter step's condition is rendered typed; false records the step ``filtered`` and
  the execution ends ``filtered``, a success that runs no later step.
- Each step's outgoing call carries ``Idempotency-Key: <event_id>:<step_id>``, and each step is an
  INTERNAL span ``step <id>`` under the ``process EVENTS`` span (its connector's CLIENT span inside).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind, Status, StatusCode

from libs.common.db.errors import STORAGE_ERRORS
from libs.common.logs.redaction import Redactor
from libs.common.models.events import EventEnvelope
from libs.common.models.workflows import Action, WorkflowStep, condition_template
from libs.common.telemetry import ActiveSpan, direct_tracer
from services.executor.decide import Finish, TryResult, after_try
from services.executor.errors import PermanentError
from services.executor.retry import Backoff
from services.executor.runner import ActionRunner, safe_error
from services.executor.store import Checkpoint, ExecutionStore
from services.executor.templates import EventContext, TriggerContext, filter_passes

log = logging.getLogger(__name__)

TRACER_NAME = "ipaas.executor"
MAX_WRITE_BACKOFF_SECONDS = 5.0
# A lost lease: another replica has the event; its message comes back after this long.
LOST_LEASE_RETRY_SECONDS = 1.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StepCall:
    """What one action step asks of the worker: the action, its key and templates, its timeout."""

    action: Action
    key: str
    extra: dict[str, Any]
    where: str
    timeout: float | None


# The worker's call of one action (breaker admission, credential, templates, connector).
CallAction = Callable[[EventEnvelope, StepCall, Redactor], Awaitable[tuple[TryResult, Any]]]


@dataclass(frozen=True, slots=True)
class StepsOutcome:
    finish: Finish
    output: Any  # the last step's kept output
    http_status: int | None


class StepRunner:
    def __init__(
        self,
        *,
        store: ExecutionStore,
        runner: ActionRunner,
        call: CallAction,
        backoff: Backoff,
        max_attempts: int,
        output_limit: int,
    ) -> None:
        self._store, self._runner, self._call = store, runner, call
        self._backoff, self._max_attempts, self._output_limit = backoff, max_attempts, output_limit

    async def run(
        self, event: EventEnvelope, steps: list[WorkflowStep], redactor: Redactor, *, attempt: int
    ) -> StepsOutcome:
        """``attempt``: the event's try as the claim counted it (a DLQ replay starts again at 1)."""
        done = await self._store.checkpoints(event.event_id)
        outputs: dict[str, dict[str, Any]] = {}
        extra: dict[str, Any] = {"trigger": TriggerContext(event), "steps": outputs}
        last: Any = None
        for position, step in enumerate(steps):
            kept = done.get(step.id)
            if kept is not None and kept.settled:
                outputs[step.id] = _seen(kept)
                last = kept.output
                continue
            if kept is not None and kept.status == "filtered":  # written just before a lost finish
                return StepsOutcome(Finish("filtered"), kept.output, None)
            if kept is not None and kept.status == "dead" and attempt > 1:
                # The step gave up and its execution's finish was lost (a crash between the two writes):
                # the event is dead, and the step is not called again.  A replay (attempt 1) runs it again.
                return StepsOutcome(Finish("dead", kept.error or f"step {step.id} gave up"), None, None)
            attempt = (kept.attempts if kept is not None and kept.status == "failed" else 0) + 1
            span = direct_tracer(TRACER_NAME).start_span(
                f"step {step.id}",
                kind=SpanKind.INTERNAL,
                attributes={
                    "ipaas.step.id": step.id,
                    "ipaas.step.position": position,
                    "ipaas.step.kind": step.action.type if step.action is not None else "filter",
                    "ipaas.step.attempt": attempt,
                },
            )
            with ActiveSpan(span):
                record, finish, status = await self._one(event, step, position, attempt, extra, redactor)
                span.set_attribute("ipaas.step.status", record.status)
                if record.status in ("failed", "dead"):
                    span.set_status(Status(StatusCode.ERROR, record.error or record.status))
            if not await self._keep(event, record):
                return StepsOutcome(
                    Finish("failed", "the event's lease was lost", retry_in=LOST_LEASE_RETRY_SECONDS), None, status
                )
            if finish is not None:
                return StepsOutcome(finish, record.output, status)
            outputs[step.id] = _seen(record)
            last = record.output
        return StepsOutcome(Finish("succeeded"), last, None)

    async def _one(
        self,
        event: EventEnvelope,
        step: WorkflowStep,
        position: int,
        attempt: int,
        extra: dict[str, Any],
        redactor: Redactor,
    ) -> tuple[Checkpoint, Finish | None, int | None]:
        """Run one step: its checkpoint, the execution's end when it ends here (else None), the HTTP status."""
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        output: Any = None
        if step.filter is not None:
            passed = await self._filter(event, step, position, extra)
            if isinstance(passed, TryResult):
                result = passed
            elif passed:
                result, output = TryResult("ok"), {"passed": True}
            else:
                duration = elapsed_ms(started)
                record = Checkpoint(
                    step.id, "filtered", attempt, {"passed": False}, None, False, position, started_at, duration
                )
                return record, Finish("filtered"), None
        else:
            assert step.action is not None
            call = StepCall(
                step.action,
                f"{event.event_id}:{step.id}",
                extra,
                f"steps.{position}.action.config",
                step.timeout_seconds,
            )
            result, raw = await self._call(event, call, redactor)
            if result.kind == "ok":
                output = self._runner.safe_output(raw, redactor, limit=self._output_limit)
        duration = elapsed_ms(started)
        if result.kind == "ok":
            record = Checkpoint(step.id, "succeeded", attempt, output, None, False, position, started_at, duration)
            return record, None, result.http_status
        error = safe_error(f"step {step.id}: {result.error or result.kind}", redactor=redactor)
        max_attempts = step.retry.max_attempts if step.retry is not None else self._max_attempts
        backoff = self._backoff
        if step.retry is not None and step.retry.backoff_seconds is not None:
            backoff = Backoff(step.retry.backoff_seconds, self._backoff.max_seconds)
        finish = after_try(
            result, attempt=attempt, max_attempts=max_attempts, backoff=backoff.delay(attempt, result.retry_after)
        )
        if finish.status == "failed":
            record = Checkpoint(step.id, "failed", attempt, None, error, False, position, started_at, duration)
            return record, Finish("failed", error, retry_in=finish.retry_in), result.http_status
        if step.continue_on_error:
            log.info("step failed; continuing", extra={"event_id": str(event.event_id), "step": step.id})
            record = Checkpoint(step.id, "failed", attempt, None, error, True, position, started_at, duration)
            return record, None, result.http_status
        record = Checkpoint(step.id, "dead", attempt, None, error, False, position, started_at, duration)
        return record, Finish("dead", finish.error and f"step {step.id}: {finish.error}"), result.http_status

    async def _filter(
        self, event: EventEnvelope, step: WorkflowStep, position: int, extra: dict[str, Any]
    ) -> bool | TryResult:
        """Whether the condition holds, or (a permanent failure) why it could not be evaluated."""
        assert step.filter is not None
        try:
            passed = await filter_passes(
                condition_template(step.filter.condition),
                event.payload,
                EventContext(event),
                self._runner.templates,
                extra=extra,
                where=f"steps.{position}.filter",
            )
        except PermanentError as exc:
            return TryResult("permanent", exc.message)
        return passed

    async def _keep(self, event: EventEnvelope, record: Checkpoint) -> bool:
        """Write the checkpoint until it commits; False: the lease is gone (another replica has the event)."""
        return await until_stored(
            lambda: self._store.checkpoint(event.event_id, record),
            "step outcome",
            {"event_id": str(event.event_id), "step": record.step_id},
        )


async def until_stored(write: Callable[[], Awaitable[T]], what: str, extra: dict[str, Any]) -> T:
    """``write()`` again until it commits (waits from 0.1 s, doubling up to 5 s): what ran must not run again."""
    delay = 0.1
    while True:
        try:
            return await write()
        except STORAGE_ERRORS as exc:
            log.warning(
                f"{what} not stored yet; retrying", extra={**extra, "error": type(exc).__name__, "retry_in_s": delay}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_WRITE_BACKOFF_SECONDS)


def _seen(record: Checkpoint) -> dict[str, Any]:
    """What later templates read of a step: ``steps.<id>.output``, ``.status`` and ``.error``."""
    return {"output": record.output, "status": record.status, "error": record.error}


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return int((time.perf_counter() - started) * 1000)
