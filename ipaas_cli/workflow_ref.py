"""``<workflow>`` arguments: a workflow's id or its (unique) name."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from ipaas_cli.client import Api
from ipaas_cli.errors import ApiError, UsageError

# A list command's filter: ``--workflow``/``-w`` and an id or name.
WorkflowOpt = Annotated[str | None, typer.Option("--workflow", "-w", help="A workflow's id or name.")]


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def all_workflows(api: Api) -> list[dict[str, Any]]:
    return list(api.pages("/api/workflows", {"limit": 100}))


def by_name(workflows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for wf in workflows:
        found.setdefault(wf["name"], []).append(wf)
    return found


def find_workflow(api: Api, ref: str) -> dict[str, Any]:
    """The workflow ``ref`` names (an id, or a name no other workflow of the tenant has)."""
    if is_uuid(ref):
        data: dict[str, Any] = api.call("GET", f"/api/workflows/{ref}").data
        return data
    matches = by_name(all_workflows(api)).get(ref, [])
    if not matches:
        raise ApiError(404, "not_found", f"no workflow named {ref!r}")
    if len(matches) > 1:
        ids = ", ".join(m["id"] for m in matches)
        raise UsageError(f"{len(matches)} workflows are named {ref!r} ({ids}): give the id")
    return matches[0]


def workflow_id(api: Api, ref: str | None) -> str | None:
    """The id of the workflow a ``--workflow`` filter names; None when the filter is not given."""
    return None if ref is None else str(find_workflow(api, ref)["id"])
