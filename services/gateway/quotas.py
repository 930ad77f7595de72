"""Quotas on what a tenant may save: schedule frequency, definition size, workflows per tenant.

Each refusal is a 422 with its own code, never a 429: waiting does not make the
request acceptable, so a client must not be invited to retry it as it is.

- ``schedule_too_frequent``: a schedule firing more often than
  ``IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS`` (cron with seconds included), on create,
  replace and rollback; ``details`` names ``trigger.cron`` or
  ``trigger.interval_seconds``.  The scheduler applies the same rule to stored
  versions (``libs.common.models.workflows.too_frequent``).
- ``definition_too_large``: a definition over ``IPAAS_GATEWAY_DEFINITION_MAX_BYTES``
  as compact JSON, on create and replace.  It keeps every definition smaller than a
  page's byte budget (``IPAAS_GATEWAY_PAGE_MAX_BYTES``), so the budget is a real bound.
- ``workflow_quota_exceeded``: a create when the tenant already has
  ``IPAAS_GATEWAY_MAX_WORKFLOWS_PER_TENANT`` workflows (deleted ones do not count);
  counted under a per-tenant lock in the create's transaction
  (:func:`services.gateway.store.workflows.create`), so concurrent creates cannot
  overshoot.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from libs.common.http.errors import ApiError
from libs.common.models.workflows import ScheduleTrigger, WorkflowDefinition, too_frequent
from services.gateway.settings import GatewaySettings


class QuotaExceeded(ApiError):
    status, code = 422, "quota_exceeded"


def check_definition(definition: WorkflowDefinition, settings: GatewaySettings) -> None:
    """A definition about to be saved as a new version: refuse it if it breaks a quota."""
    dumped = definition.model_dump(mode="json", include={"name", "trigger", "action", "steps"})
    check_schedule(dumped, settings.schedule.min_interval_seconds)
    size = len(orjson.dumps(dumped))
    if size > settings.definition_max_bytes:
        raise QuotaExceeded(
            f"the workflow definition is {size} bytes; at most {settings.definition_max_bytes} are allowed",
            code="definition_too_large",
            details={"limit": settings.definition_max_bytes, "size": size},
        )


def check_schedule(definition: Any, min_interval_seconds: int) -> None:
    """``definition`` (stored JSON or a dump) whose schedule fires too often gives 422 ``schedule_too_frequent``.

    A stored trigger that no longer parses is left alone: the scheduler reports it as
    ``schedule_error``.
    """
    trigger = definition.get("trigger") if isinstance(definition, dict) else None
    if not isinstance(trigger, dict) or trigger.get("type") != "schedule":
        return
    try:
        parsed = ScheduleTrigger.model_validate(trigger)
    except ValidationError:
        return
    problem = too_frequent(parsed, min_interval_seconds)
    if problem is not None:
        field = "trigger.interval_seconds" if parsed.interval_seconds is not None else "trigger.cron"
        raise QuotaExceeded(
            "the schedule fires too often",
            code="schedule_too_frequent",
            details=[{"field": field, "message": problem, "type": "schedule_too_frequent"}],
        )


def workflows_exceeded(limit: int) -> QuotaExceeded:
    return QuotaExceeded(
        f"the tenant already has the most workflows allowed ({limit}); delete one first",
        code="workflow_quota_exceeded",
        details={"limit": limit},
    )
