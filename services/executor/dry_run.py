"""Dry runs: ``svc.executor.dry_run`` request/reply, one replica answers (queue group).

Request ``DryRunCommand`` ``{"tenant_id", "workflow": <WorkflowDefinition JSON>, "payload": {...}}``;
reply ``DryRunResult`` ``{"status": "succeeded"|"failed", "output", "error", "duration_ms"}``
(both in ``libs/common/models/api.py``); a template failure also carries ``error_code``
(``invalid_template``, ``template_limit_exceeded``, ``template_error``) and ``error_field``
(``action.config.text``), so the gateway can answer 422 for the first two.
The action runs for real (credential included); no execution is recorded and
breakers are not touched.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from libs.common.bus import Bus
from libs.common.models.api import DryRunCommand, DryRunResult
from services.executor.errors import ActionError
from services.executor.runner import ActionRunner, safe_error
from services.executor.templates import TemplateError

log = logging.getLogger(__name__)

QUEUE_GROUP = "executor"


def _reply(status: str, output: Any, error: str | None, duration_ms: int, *, error_code: str | None = None,
           error_field: str | None = None) -> bytes:
    return DryRunResult(status=status, output=output, error=error, duration_ms=duration_ms, error_code=error_code,
                        error_field=error_field).model_dump_json().encode()


class DryRunResponder:
    def __init__(self, bus: Bus, runner: ActionRunner, *, subject: str, concurrency: int = 16) -> None:
        self._bus = bus
        self._runner = runner
        self._subject = subject
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self._bus.nc.subscribe(self._subject, queue=QUEUE_GROUP, cb=self._on_msg)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # noqa: BLE001 - best effort during shutdown
                log.debug("dry-run unsubscribe failed", exc_info=True)
            self._sub = None
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)

    async def _on_msg(self, msg: Msg) -> None:
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        async with self._slots:
            body = await self.run(msg.data)
        if msg.reply:
            try:
                await msg.respond(body)
            except Exception:  # noqa: BLE001 - the requester may have gone away
                log.debug("dry-run reply failed", exc_info=True)

    async def run(self, data: bytes) -> bytes:
        started = time.perf_counter()
        try:
            req = DryRunCommand.model_validate_json(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                 for e in exc.errors(include_url=False, include_input=False))
            return _reply("failed", None, safe_error(f"invalid dry-run request: {problems}"), 0)
        try:
            call = await self._runner.prepare(tenant_id=req.tenant_id, event_id=uuid.uuid4(),
                                              definition=req.workflow, payload=req.payload,
                                              event={"id": None, "trigger": "manual", "dry_run": True})
            output = await self._runner.call(req.workflow.action.type, call)
        except TemplateError as exc:
            return _reply("failed", None, safe_error(exc.message), _elapsed(started), error_code=exc.code,
                          error_field=exc.field)
        except ActionError as exc:
            return _reply("failed", None, safe_error(exc.message), _elapsed(started))
        except Exception as exc:  # noqa: BLE001 - a dry run reports every failure, never crashes
            log.exception("dry run failed unexpectedly")
            return _reply("failed", None, f"internal error: {type(exc).__name__}", _elapsed(started))
        return _reply("succeeded", self._runner.safe_output(output), None, _elapsed(started))


def _elapsed(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
