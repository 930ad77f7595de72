"""What ``apply`` would do to one workflow: a pure decision from the declared and the current state.

Both sides go through the same model as the API's (:class:`WorkflowCreate`),
so defaults the server fills in (``timezone: UTC``, ``method: POST``...) are
no change.  A changed definition is a new version (``PUT``); a changed
``is_active`` alone is an enable or disable (``PATCH``), which writes no version.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from ipaas_cli.errors import UsageError
from libs.common.models.workflows import STORED, WorkflowCreate, WorkflowDefinition


class Change(StrEnum):
    CREATE = "create"
    UPDATE = "update"  # a new version
    ENABLE = "enable"
    DISABLE = "disable"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Step:
    name: str
    change: Change
    body: dict[str, Any]  # what is sent (normalised)
    diff: str
    workflow_id: str | None = None


def normalise(body: dict[str, Any], source: str) -> dict[str, Any]:
    try:
        model = WorkflowCreate.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'workflow'}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"{source}: invalid workflow: {problems}") from exc
    return model.model_dump(mode="json")


def current_definition(workflow: dict[str, Any]) -> dict[str, Any]:
    # One action, or steps: the API shows the form the workflow was saved in.
    fields = {k: workflow[k] for k in ("name", "trigger", "action", "steps") if workflow.get(k) is not None}
    model = WorkflowDefinition.model_validate(fields, context=STORED)
    return {**model.model_dump(mode="json"), "is_active": bool(workflow["is_active"])}


def _text(body: dict[str, Any] | None) -> list[str]:
    return [] if body is None else json.dumps(body, indent=2, sort_keys=True).splitlines(keepends=True)


def diff_of(name: str, before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    return "".join(
        difflib.unified_diff(_text(before), _text(after), fromfile=f"{name} (server)", tofile=f"{name} (declared)")
    )


def decide(desired: dict[str, Any], current: dict[str, Any] | None) -> Step:
    """``desired`` is normalised; ``current`` is the workflow as the API returns it, or None."""
    name = desired["name"]
    if current is None:
        return Step(name, Change.CREATE, desired, diff_of(name, None, desired))
    before = current_definition(current)
    diff = diff_of(name, before, desired)
    strip = {k: v for k, v in desired.items() if k != "is_active"}
    if strip != {k: v for k, v in before.items() if k != "is_active"}:
        return Step(name, Change.UPDATE, desired, diff, current["id"])
    if desired["is_active"] != before["is_active"]:
        change = Change.ENABLE if desired["is_active"] else Change.DISABLE
        return Step(name, change, desired, diff, current["id"])
    return Step(name, Change.UNCHANGED, desired, "", current["id"])
