"""``ipaas apply -f <file or dir>``: make the server's workflows match the YAML (matched by name).

Idempotent: a second run with the same files changes nothing and writes no
version.  Workflows on the server that no file declares are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ipaas_cli import manifests
from ipaas_cli.client import Api
from ipaas_cli.errors import UsageError
from ipaas_cli.output import guarded
from ipaas_cli.plan import Change, Step, decide, normalise
from ipaas_cli.session import JsonOpt, api_of
from ipaas_cli.workflow_ref import all_workflows, by_name

COLOURS = {
    Change.CREATE: "green",
    Change.UPDATE: "yellow",
    Change.ENABLE: "cyan",
    Change.DISABLE: "cyan",
    Change.UNCHANGED: "dim",
}


def _credentials(api: Api, wanted: list[manifests.Manifest]) -> dict[str, str]:
    if not any(manifests.names_a_credential(m) for m in wanted):
        return {}
    return {c["name"]: c["id"] for c in api.pages("/api/credentials", {"limit": 100})}


def _carry_out(api: Api, step: Step) -> dict[str, Any]:
    if step.change is Change.CREATE:
        reply = api.call("POST", "/api/workflows", step.body)
    elif step.change is Change.UPDATE:
        reply = api.call("PUT", f"/api/workflows/{step.workflow_id}", step.body)
    else:
        reply = api.call("PATCH", f"/api/workflows/{step.workflow_id}", {"is_active": step.body["is_active"]})
    done: dict[str, Any] = reply.data
    return done


def _plan(api: Api, path: Path) -> list[Step]:
    declared = manifests.load(path)
    credentials = _credentials(api, declared)
    existing = by_name(all_workflows(api))
    steps = []
    for m in declared:
        desired = normalise(manifests.resolve_credentials(m, credentials), m.source)
        same_name = existing.get(m.name, [])
        if len(same_name) > 1:
            raise UsageError(f"{len(same_name)} workflows on the server are named {m.name!r}: rename or delete one")
        steps.append(decide(desired, same_name[0] if same_name else None))
    return steps


def apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("-f", "--file", help="A YAML file, or a directory of them.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and diff; change nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Create or update workflows declared in YAML; show a diff; write a version only where something changed."""
    with guarded(json_out) as out:
        api = api_of(ctx)
        steps = _plan(api, file)
        results = []
        for step in steps:
            row: dict[str, Any] = {
                "name": step.name,
                "change": step.change.value,
                "id": step.workflow_id,
                "diff": step.diff,
            }
            if step.change is not Change.UNCHANGED and not dry_run:
                done = _carry_out(api, step)
                row.update(id=done["id"], version=done.get("version"))
                if done.get("webhook"):
                    row["webhook"] = done["webhook"]  # a new secret is shown once: here
            results.append(row)

        def human(console: Console) -> None:
            for row in results:
                colour = COLOURS[Change(row["change"])]
                console.print(
                    f"[{colour}]{row['change']:>9}[/] {escape(row['name'])}"
                    + (f"  (version {row['version']})" if row.get("version") else "")
                )
                if row["diff"] and row["change"] != Change.CREATE:
                    console.print(escape(row["diff"]), style="dim")
                secret = (row.get("webhook") or {}).get("secret")
                if secret:
                    console.print(f"          webhook {row['webhook']['url']}, secret {secret} (shown once)")
            counts = {c.value: sum(r["change"] == c.value for r in results) for c in Change}
            summary = ", ".join(f"{n} {c}" for c, n in counts.items() if n)
            console.print(("dry run: " if dry_run else "") + (summary or "nothing declared"))

        out.result(
            {
                "dry_run": dry_run,
                "workflows": results,
                "changed": sum(r["change"] != Change.UNCHANGED for r in results),
            },
            human,
        )
