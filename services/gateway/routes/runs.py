"""Manual runs (through the bus, 202 after the PubAck) and dry-runs (request/reply to the executor).

Dry-run wire contract, subject ``IPAAS_GATEWAY_DRY_RUN_SUBJECT`` (default
``svc.executor.dry_run``):

- request: ``{"tenant_id": "<uuid>", "workflow": <WorkflowDefinition JSON>, "payload": <any>,
  "timeout_ms": <int>}``
- reply: ``{"status": "succeeded"|"failed", "output": <any>, "error": <str|null>, "duration_ms": <int>}``

No responder, or no reply within the timeout, gives 503 with ``Retry-After``.

Limits (the executor's, per replica; ``services/executor/dry_run_limits.py``): the
request carries how long this gateway will wait (``timeout_ms``: the reply timeout
less a margin for the reply's way back), and the executor does not start a request
whose time is up and cancels one that runs past it, so nothing runs for a caller
that has gone.  A reply with ``refused`` set was not run:

- ``tenant_limit``: 429 ``dry_run_rate_limited`` with ``Retry-After``: this tenant
  has as many dry-runs running or waiting as it may; its own excess, so a 429.
- ``queue_full`` or ``deadline_passed`` (waited for a slot until the deadline): 503
  ``dry_run_busy`` with ``Retry-After``: the executor's capacity is taken, by every
  tenant together.  Nothing is wrong with this caller's request, so it is the
  server's temporary overload (503, as when the bus is down), not a rate the caller
  exceeded; clients and proxies retry a 503 after ``Retry-After``.

Templates and steps: a definition the save would refuse for its templates or its
step graph is refused before the executor is asked, 422 with ``details`` naming
each field (e.g. ``workflow.action.config.text``) and its ``type``; the code says
what the details are (:func:`refusal_code`): ``invalid_template`` when every one is
a template that does not compile (always so for a single action), ``invalid_step``
when every one is a step-graph error (a duplicate id, ``steps.<id>`` of a later
step), ``invalid_definition`` for a mix of the two.  A template that the executor stops at a limit gives
422 ``template_limit_exceeded`` (or ``invalid_template``, should it not compile
there). Any other failure, templates included, is the usual 200 with
``"status": "failed"``.
"""

from __future__ import annotations

import uuid

from aiohttp import web
from pydantic import ValidationError

from libs.common.bus import BusUnavailable, NoResponders
from libs.common.http.envelope import ok
from libs.common.http.errors import Conflict, RateLimited, ServiceUnavailable, ValidationFailed
from libs.common.logs import mask_value
from libs.common.models.api import AcceptedEvent, DryRunCommand, DryRunRequest, DryRunResult, RunRequest
from libs.common.models.events import EventEnvelope, Trigger, event_id_for
from libs.common.models.workflows import STEP, TEMPLATE, Problem, definition_problems
from services.gateway.hooks.ingest import IDEMPOTENCY_HEADER, sender_key
from services.gateway.keys import BUS, POOL, SETTINGS
from services.gateway.pagination import path_id, uuid_segment
from services.gateway.routes.workflows import json_body, tenant
from services.gateway.store import workflows as store

# Dry-run outcomes that are the request's fault (422) rather than the action's (200 "failed").
TEMPLATE_REFUSALS = frozenset({"invalid_template", "template_limit_exceeded"})


# The 422 code of a dry-run refused for a mix of template and step-graph problems.
INVALID_DEFINITION = "invalid_definition"


def refusal_code(problems: list[Problem]) -> str:
    """``invalid_template`` or ``invalid_step`` when every problem is of that type, else ``invalid_definition``."""
    kinds = {kind for _, _, kind in problems}
    if kinds <= {TEMPLATE}:
        return TEMPLATE
    if kinds <= {STEP}:
        return STEP
    return INVALID_DEFINITION


REFUSAL_MESSAGES = {
    TEMPLATE: "a template does not compile",
    STEP: "the steps are not sound",
    INVALID_DEFINITION: "the steps are not sound and a template does not compile",
}


class DryRunRateLimited(RateLimited):
    code = "dry_run_rate_limited"


class DryRunBusy(ServiceUnavailable):
    code = "dry_run_busy"


# Time kept back from the reply timeout for the executor's answer to travel back.
REPLY_MARGIN_SECONDS = 0.5


def executor_timeout_ms(reply_timeout_seconds: float) -> int:
    """The ``timeout_ms`` sent with a dry-run: the reply timeout less the margin (never under half of it)."""
    return max(1, int((reply_timeout_seconds - min(REPLY_MARGIN_SECONDS, reply_timeout_seconds / 2)) * 1000))


async def run_workflow(request: web.Request) -> web.Response:
    workflow_id = path_id(request)
    body = await json_body(request, RunRequest)
    tenant_id = tenant(request)
    row = await store.get(request.app[POOL], tenant_id, workflow_id)
    if not row["is_active"]:
        raise Conflict("workflow is inactive", code="workflow_inactive")
    dedup_key = sender_key(request.headers.get(IDEMPOTENCY_HEADER)) or uuid.uuid4().hex
    envelope = EventEnvelope(
        event_id=event_id_for(workflow_id, dedup_key),
        dedup_key=dedup_key,
        tenant_id=tenant_id,
        workflow_id=workflow_id,
        workflow_version=row["current_version"],
        trigger=Trigger.MANUAL,
        payload=body.payload,
    )
    s = request.app[SETTINGS]
    try:
        result = await request.app[BUS].publish_event(envelope, timeout=s.publish_timeout_seconds)
    except BusUnavailable as exc:
        raise ServiceUnavailable("event bus unavailable; retry later", retry_after=s.retry_after_seconds) from exc
    return ok(AcceptedEvent(event_id=envelope.event_id, duplicate=result.duplicate), status=202)


async def dry_run(request: web.Request) -> web.Response:
    body = await json_body(request, DryRunRequest)
    problems = definition_problems(body.workflow)
    if problems:
        code = refusal_code(problems)
        raise ValidationFailed(
            REFUSAL_MESSAGES[code],
            code=code,
            details=[
                {"field": ".".join(map(str, ("workflow", *loc))), "message": reason, "type": kind}
                for loc, reason, kind in problems
            ],
        )
    s = request.app[SETTINGS]
    wait = s.retry_after_seconds
    command = DryRunCommand(
        tenant_id=tenant(request),
        workflow=body.workflow,
        payload=body.payload,
        timeout_ms=executor_timeout_ms(s.dry_run_timeout_seconds),
    )
    message = command.model_dump_json().encode()
    bus = request.app[BUS]
    if not bus.is_connected:
        raise ServiceUnavailable("event bus unavailable; retry later", retry_after=wait)
    try:
        reply = await bus.request(s.dry_run_subject, message, timeout=s.dry_run_timeout_seconds)
    except NoResponders as exc:
        raise ServiceUnavailable("no executor is available for dry-runs", retry_after=wait) from exc
    except (BusUnavailable, TimeoutError, OSError) as exc:  # no reply in time (RequestTimeout), or NATS away
        raise ServiceUnavailable("the executor did not answer the dry-run in time", retry_after=wait) from exc
    try:
        result = DryRunResult.model_validate_json(reply.data)
    except ValidationError as exc:
        raise ServiceUnavailable("the executor sent a malformed dry-run reply", retry_after=wait) from exc
    if result.refused == "tenant_limit":
        raise DryRunRateLimited("too many dry-runs of this tenant at once; retry later", retry_after=wait)
    if result.refused is not None:
        raise DryRunBusy("the executor is busy with other dry-runs; retry later", retry_after=wait)
    if result.error_code in TEMPLATE_REFUSALS:
        field = f"workflow.{result.error_field}" if result.error_field else "workflow"
        raise ValidationFailed(
            result.error or "template failed",
            code=result.error_code,
            details=[{"field": field, "message": result.error, "type": result.error_code}],
        )
    out = result.model_dump(mode="json", exclude={"refused"})
    out["output"] = mask_value(out["output"])
    return ok(out)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/workflows/dry-run", dry_run)
    app.router.add_post(f"/api/workflows/{uuid_segment('id')}/run", run_workflow)
