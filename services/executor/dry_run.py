"""Dry runs: ``svc.executor.dry_run`` request/reply, one replica answers (queue group).

Request ``DryRunCommand`` ``{"tenant_id", "workflow": <WorkflowDefinition JSON>, "payload": {...},
"timeout_ms"}``; reply ``DryRunResult`` ``{"status": "succeeded"|"failed", "output", "error",
"duration_ms"}`` (both in ``libs/common/models/api.py``); a multi-step workflow runs every step
once and adds ``steps`` (each step's status and output), its status may be ``filtered``; a
template failure also carries ``error_code`` (``invalid_template``, ``template_limit_exceeded``,
``template_error``) and ``error_field`` (``action.config.text``), so the gateway can answer 422 for the first two.
The action runs for real (credential included); no execution is recorded and
breakers are not touched.

Limits (:mod:`services.executor.dry_run_limits`): a request is admitted or refused
at once, without running, with ``refused`` set: ``tenant_limit`` (the tenant has
``IPAAS_EXECUTOR_DRY_RUN_PER_TENANT`` running or waiting here) or ``queue_full``
(``IPAAS_EXECUTOR_DRY_RUN_CONCURRENCY`` running and ``IPAAS_EXECUTOR_DRY_RUN_QUEUE``
waiting).  An admitted request waits for a slot until its deadline (its
``timeout_ms`` from receipt, at most ``IPAAS_EXECUTOR_DRY_RUN_MAX_SECONDS``): one
still waiting then is answered ``deadline_passed`` and never runs; one running then
is cancelled and answered ``failed`` with ``error_code`` ``deadline_exceeded``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Literal, TypedDict, Unpack

from pydantic import ValidationError

from libs.common.bus import Bus, Message, Subscription
from libs.common.bus.tracing import consumer_span
from libs.common.logs.redaction import Redactor, redacting
from libs.common.models.api import DryRunCommand, DryRunResult
from libs.common.models.workflows import WorkflowStep, condition_template
from libs.common.telemetry import ActiveSpan
from services.executor.dry_run_limits import Admissions, DryRunLimits, Refusal, deadline
from services.executor.errors import ActionError
from services.executor.runner import ActionRunner, safe_error
from services.executor.steps import elapsed_ms
from services.executor.templates import TemplateError, filter_passes

log = logging.getLogger(__name__)

QUEUE_GROUP = "executor"


_REFUSED = {
    "tenant_limit": "the tenant already has as many dry-runs running or waiting as it may",
    "queue_full": "every dry-run slot is taken and the queue is full",
    "deadline_passed": "the dry-run waited for a slot until its requester gave up; it was not run",
}


class _Details(TypedDict, total=False):
    """The optional fields of a ``DryRunResult`` (named here so a misspelt one fails type-checking)."""

    error_code: str | None
    error_field: str | None
    steps: list[dict[str, Any]]
    refused: Refusal | Literal["deadline_passed"]


def _reply(status: str, output: Any, error: str | None, duration_ms: int, **details: Unpack[_Details]) -> bytes:
    """A ``DryRunResult`` as sent."""
    result = DryRunResult(status=status, output=output, error=error, duration_ms=duration_ms, **details)
    return result.model_dump_json().encode()


def _failed(error: str, started: float, **details: Unpack[_Details]) -> bytes:
    """A failed ``DryRunResult`` of a run that began at ``started`` (a ``time.perf_counter()`` reading)."""
    return _reply("failed", None, error, elapsed_ms(started), **details)


def _refused(reason: Refusal | Literal["deadline_passed"]) -> bytes:
    return _reply("refused", None, _REFUSED[reason], 0, refused=reason)


class DryRunResponder:
    def __init__(self, bus: Bus, runner: ActionRunner, *, subject: str, limits: DryRunLimits) -> None:
        self._bus = bus
        self._runner = runner
        self._subject = subject
        self._limits = limits
        self._admissions = Admissions(limits)
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self._bus.subscribe(self._subject, self._on_msg, queue=QUEUE_GROUP)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                log.debug("dry-run unsubscribe failed", exc_info=True)
            self._sub = None
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)

    async def _on_msg(self, msg: Message) -> None:
        received = asyncio.get_running_loop().time()
        task = asyncio.create_task(self._answer(msg, received))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Message, received: float) -> None:
        # A CONSUMER span in the gateway request's trace; the reply carries it back.
        with ActiveSpan(consumer_span(msg, msg.subject, QUEUE_GROUP)):
            body = await self.run(msg.data, received=received)
            try:
                await self._bus.respond(msg, body)
            except Exception:
                log.debug("dry-run reply failed", exc_info=True)

    async def run(self, data: bytes, *, received: float) -> bytes:
        """The reply to one request received at ``received`` (the loop's clock)."""
        try:
            req = DryRunCommand.model_validate_json(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            return _reply("failed", None, safe_error(f"invalid dry-run request: {problems}"), 0)
        refusal = self._admissions.try_admit(req.tenant_id)
        if refusal is not None:
            log.info(
                "dry-run refused",
                extra={"tenant_id": str(req.tenant_id), "reason": refusal, "admitted": self._admissions.admitted},
            )
            return _refused(refusal)
        try:
            return await self._queued(req, deadline(received, req.timeout_ms, self._limits))
        finally:
            self._admissions.release(req.tenant_id)

    async def _queued(self, req: DryRunCommand, until: float) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(until):
                await self._slots.acquire()
        except TimeoutError:
            return self._expired(req, until)
        try:
            if loop.time() >= until:  # a free slot is taken without waiting; the deadline may be gone already
                return self._expired(req, until)
            return await self._execute(req, until)
        finally:
            self._slots.release()

    def _expired(self, req: DryRunCommand, until: float) -> bytes:
        log.info(
            "dry-run not run: its deadline passed while it waited",
            extra={"tenant_id": str(req.tenant_id), "late_ms": int((asyncio.get_running_loop().time() - until) * 1000)},
        )
        return _refused("deadline_passed")

    async def _execute(self, req: DryRunCommand, until: float) -> bytes:
        # The credential's values never come back in the reply, nor in a log line written meanwhile.
        with redacting(Redactor()) as redactor:
            return await self._execute_redacted(req, until, redactor)

    async def _execute_redacted(self, req: DryRunCommand, until: float, redactor: Redactor) -> bytes:
        started = time.perf_counter()
        try:
            async with asyncio.timeout_at(until) as window:
                if req.workflow.steps is not None:
                    return await self._steps(req, req.workflow.steps, redactor, started)
                try:
                    call = await self._runner.prepare(
                        tenant_id=req.tenant_id,
                        event_id=uuid.uuid4(),
                        definition=req.workflow,
                        payload=req.payload,
                        event={"id": None, "trigger": "manual", "dry_run": True},
                    )
                    redactor.add_secret(call.secret)
                    output = await self._runner.call(req.workflow.first_action().type, call)
                except TemplateError as exc:
                    error = safe_error(exc.message, redactor=redactor)
                    return _failed(error, started, error_code=exc.code, error_field=exc.field)
                except ActionError as exc:
                    return _failed(safe_error(exc.message, redactor=redactor), started)
        except TimeoutError:
            if not window.expired():
                log.exception("dry run failed unexpectedly")
                return _failed("internal error: TimeoutError", started)
            log.info(
                "dry-run cancelled at its deadline",
                extra={"tenant_id": str(req.tenant_id), "ran_ms": elapsed_ms(started)},
            )
            stopped = f"the dry-run was stopped after {elapsed_ms(started)} ms: its requester stopped waiting"
            return _failed(stopped, started, error_code="deadline_exceeded")
        except Exception as exc:
            log.exception("dry run failed unexpectedly")
            return _failed(f"internal error: {type(exc).__name__}", started)
        return _reply("succeeded", self._runner.safe_output(output, redactor), None, elapsed_ms(started))

    async def _steps(self, req: DryRunCommand, steps: list[WorkflowStep], redactor: Redactor, started: float) -> bytes:
        """Every step once, in order, as the executor would run them (no retries, nothing recorded).

        The reply's ``steps`` lists each step that ran with its status, output and error; ``status`` is
        ``succeeded``, ``filtered`` (a filter was false: later steps did not run) or ``failed`` (a step
        failed without ``continue_on_error``); ``output`` is the last step's.  A template failure also
        carries ``error_code`` and ``error_field`` (``steps.1.action.config.text``).
        """
        key = uuid.uuid4()
        seen: dict[str, dict[str, Any]] = {}
        extra: dict[str, Any] = {"trigger": _DRY_TRIGGER, "steps": seen}
        event = {"id": None, "trigger": "manual", "dry_run": True}
        ran: list[dict[str, Any]] = []
        last: Any = None
        for position, step in enumerate(steps):
            step_started = time.perf_counter()
            try:
                if step.filter is not None:
                    passed = await filter_passes(
                        condition_template(step.filter.condition),
                        req.payload,
                        event,
                        self._runner.templates,
                        extra=extra,
                        where=f"steps.{position}.filter",
                    )
                    output: Any = {"passed": passed}
                    if not passed:
                        ran.append(_step_out(step.id, "filtered", output, None, step_started))
                        return _reply("filtered", output, None, elapsed_ms(started), steps=ran)
                else:
                    assert step.action is not None
                    call = await self._runner.prepare_action(
                        step.action,
                        tenant_id=req.tenant_id,
                        key=f"{key}:{step.id}",
                        payload=req.payload,
                        event=event,
                        extra=extra,
                        where=f"steps.{position}.action.config",
                    )
                    redactor.add_secret(call.secret)
                    raw = await self._runner.call(step.action.type, call, timeout=step.timeout_seconds)
                    output = self._runner.safe_output(raw, redactor)
            except ActionError as exc:
                error = safe_error(f"step {step.id}: {exc.message}", redactor=redactor)
                ran.append(_step_out(step.id, "failed", None, error, step_started))
                seen[step.id] = {"output": None, "status": "failed", "error": error}
                if step.continue_on_error:
                    continue
                if isinstance(exc, TemplateError):
                    return _failed(error, started, error_code=exc.code, error_field=exc.field, steps=ran)
                return _failed(error, started, steps=ran)
            ran.append(_step_out(step.id, "succeeded", output, None, step_started))
            seen[step.id] = {"output": output, "status": "succeeded", "error": None}
            last = output
        return _reply("succeeded", last, None, elapsed_ms(started), steps=ran)


# ``trigger`` in a dry-run's templates: a manual run that has no event.
_DRY_TRIGGER: dict[str, Any] = {
    "type": "manual",
    **dict.fromkeys(("event_id", "workflow_id", "workflow_version", "dedup_key", "received_at", "scheduled_for")),
    "dry_run": True,
}


def _step_out(step_id: str, status: str, output: Any, error: str | None, started: float) -> dict[str, Any]:
    return {"id": step_id, "status": status, "output": output, "error": error, "duration_ms": elapsed_ms(started)}
