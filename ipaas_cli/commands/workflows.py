"""``ipaas workflows list|get|enable|disable|versions|rollback|rotate-secret``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ipaas_cli.output import guarded
from ipaas_cli.session import JsonOpt, api_of
from ipaas_cli.workflow_ref import find_workflow

app = typer.Typer(help="Workflows: list, inspect, enable/disable, versions and rollback.", no_args_is_help=True)

WorkflowArg = Annotated[str, typer.Argument(help="The workflow's id or name.")]
COLUMNS = ["id", "name", "trigger", "action", "is_active", "version", "updated_at"]


def work_of(definition: dict[str, Any]) -> str | None:
    """The action's type, or a multi-step workflow's steps in order: ``lookup (http_request) → big (filter)``."""
    steps = definition.get("steps")
    if isinstance(steps, list):
        return " → ".join(f"{s['id']} ({(s.get('action') or {}).get('type') or 'filter'})" for s in steps)
    return (definition.get("action") or {}).get("type")


def summary(wf: dict[str, Any]) -> dict[str, Any]:
    trigger = wf.get("trigger") or {}
    when = trigger.get("cron") or (f"every {trigger['interval_seconds']}s" if trigger.get("interval_seconds") else "")
    return {
        **wf,
        "trigger": " ".join(filter(None, [trigger.get("type"), when])),
        "action": work_of(wf),
    }


@app.command("list")
def list_workflows(
    ctx: typer.Context,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many (default: all).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Every workflow of your tenant, oldest first."""
    with guarded(json_out) as out:
        rows = list(api_of(ctx).pages("/api/workflows", {"limit": min(limit or 100, 100)}, max_rows=limit))
        out.table(
            [summary(r) for r in rows],
            COLUMNS,
            data=rows,
            empty="no workflows yet: declare some in YAML and run `ipaas apply -f <dir>`",
        )


@app.command("get")
def get(ctx: typer.Context, workflow: WorkflowArg, json_out: JsonOpt = False) -> None:
    """One workflow, with its trigger, action (or steps) and webhook URL."""
    with guarded(json_out) as out:
        wf = find_workflow(api_of(ctx), workflow)

        def human(console: Console) -> None:
            for key in ("id", "name", "is_active", "version", "created_at", "updated_at", "schedule_error"):
                if wf.get(key) is not None:
                    console.print(f"[bold]{key}[/]: {escape(str(wf[key]))}")
            console.print(f"[bold]trigger[/]: {escape(json.dumps(wf['trigger']))}")
            if wf.get("steps") is not None:
                for step in wf["steps"]:
                    console.print(f"[bold]step {escape(step['id'])}[/]: {escape(json.dumps(step))}")
            else:
                console.print(f"[bold]action[/]: {escape(json.dumps(wf['action']))}")
            if wf.get("webhook"):
                console.print(f"[bold]webhook[/]: {escape(wf['webhook']['url'])}")

        out.result(wf, human)


def _set_active(ctx: typer.Context, workflow: str, active: bool, json_out: bool) -> None:
    with guarded(json_out) as out:
        api = api_of(ctx)
        wf = find_workflow(api, workflow)
        done = api.call("PATCH", f"/api/workflows/{wf['id']}", {"is_active": active}).data
        word = "enabled" if active else "disabled"
        out.result(done, lambda c: c.print(f"{escape(done['name'])} {word}"))


@app.command("enable")
def enable(ctx: typer.Context, workflow: WorkflowArg, json_out: JsonOpt = False) -> None:
    """Start accepting its webhooks and schedules again (no new version)."""
    _set_active(ctx, workflow, True, json_out)


@app.command("disable")
def disable(ctx: typer.Context, workflow: WorkflowArg, json_out: JsonOpt = False) -> None:
    """Stop it: webhooks answer 404, schedules stop (no new version)."""
    _set_active(ctx, workflow, False, json_out)


@app.command("versions")
def versions(ctx: typer.Context, workflow: WorkflowArg, json_out: JsonOpt = False) -> None:
    """Its version history, oldest first; the current one is marked."""
    with guarded(json_out) as out:
        api = api_of(ctx)
        wf = find_workflow(api, workflow)
        rows = list(api.pages(f"/api/workflows/{wf['id']}/versions", {"limit": 100}))
        shown = [
            {
                "version": r["version"],
                "current": r["current"],
                "created_at": r["created_at"],
                "trigger": (r["definition"].get("trigger") or {}).get("type"),
                "action": work_of(r["definition"]),
            }
            for r in rows
        ]
        out.table(shown, ["version", "current", "created_at", "trigger", "action"], data=rows)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    workflow: WorkflowArg,
    version: Annotated[int, typer.Option("--to", "--version", min=1, help="The version to restore.")],
    json_out: JsonOpt = False,
) -> None:
    """Make an old version current again (as a new version)."""
    with guarded(json_out) as out:
        api = api_of(ctx)
        wf = find_workflow(api, workflow)
        done = api.call("POST", f"/api/workflows/{wf['id']}/rollback", {"version": version}).data
        out.result(
            done, lambda c: c.print(f"{escape(done['name'])}: version {version} restored as version {done['version']}")
        )


@app.command("rotate-secret")
def rotate_secret(ctx: typer.Context, workflow: WorkflowArg, json_out: JsonOpt = False) -> None:
    """A new webhook secret, shown once (the previous one stays valid for 24 h)."""
    with guarded(json_out) as out:
        api = api_of(ctx)
        wf = find_workflow(api, workflow)
        done = api.call("POST", f"/api/workflows/{wf['id']}/webhook-secret").data
        out.result(
            done,
            lambda c: c.print(
                f"new secret {done['webhook']['secret']} "
                f"(the previous one is valid until {done['previous_valid_until']})"
            ),
        )
