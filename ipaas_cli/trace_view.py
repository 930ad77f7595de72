"""How one execution is shown to a person: fields, attempts, steps, input/output, and the trace link.

The trace link is ``IPAAS_TRACE_URL_TEMPLATE`` with ``{trace_id}`` replaced,
e.g. ``https://jaeger.example.com/trace/{trace_id}``.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ipaas_cli.output import cell
from ipaas_cli.settings import CliSettings

FIELDS = (
    "id",
    "event_id",
    "workflow_id",
    "workflow_version",
    "trigger",
    "status",
    "attempts",
    "started_at",
    "finished_at",
    "duration_ms",
    "error",
    "trace_id",
)
ATTEMPT_COLUMNS = ("number", "started_at", "finished_at", "outcome", "http_status", "error")
# A multi-step workflow's checkpoints (each step's output is in ``--json``).
STEP_COLUMNS = ("id", "status", "attempts", "duration_ms", "error")


def trace_link(trace_id: str | None) -> str | None:
    template = CliSettings().trace_url_template
    if not template or not trace_id:
        return None
    return template.replace("{trace_id}", trace_id)


def _attempt_number(attempt: dict[str, Any]) -> Any:
    return attempt.get("number", attempt.get("attempt"))


def render_execution(console: Console, detail: dict[str, Any]) -> None:
    for key in FIELDS:
        if key in detail:
            console.print(f"[bold]{key}[/]: {escape(cell(detail[key]))}")
    link = trace_link(detail.get("trace_id"))
    if link:
        console.print(f"[bold]trace[/]: {escape(link)}")
    attempts = detail.get("attempt_history") or (
        detail["attempts"] if isinstance(detail.get("attempts"), list) else None
    )
    if attempts:
        table = Table(title="attempts")
        for col in ATTEMPT_COLUMNS:
            table.add_column(col)
        for a in attempts:
            table.add_row(
                *(escape(cell(_attempt_number(a) if col == "number" else a.get(col))) for col in ATTEMPT_COLUMNS)
            )
        console.print(table)
    if detail.get("steps"):
        steps = Table(title="steps")
        for col in STEP_COLUMNS:
            steps.add_column(col)
        for step in detail["steps"]:
            status = "failed (continued)" if step.get("continued") else step.get("status")
            steps.add_row(*(escape(cell(status if col == "status" else step.get(col))) for col in STEP_COLUMNS))
        console.print(steps)
    for key in ("input", "output"):
        if detail.get(key) is not None:
            console.print(f"[bold]{key}[/]:")
            console.print(escape(json.dumps(detail[key], indent=2, default=str)))
