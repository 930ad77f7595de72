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

ATTEMPT_COLUMNS = ("number", "started_at", "finished_at", "outcome", "http_status", "error")
# A multi-step workflow's checkpoints (each step's output is in ``--json``).
STEP_COLUMNS = ("id", "status", "attempts", "duration_ms", "error")


def trace_link(trace_id: str | None) -> str | None:
    template = CliSettings().trace_url_template
    if not template or not trace_id:
        return None
    return template.replace("{trace_id}", trace_id)


def render_execution(console: Console, detail: dict[str, Any]) -> None:
    # An execution's fields, in the API's order (imported here: only this command needs the API's models).
    from libs.common.models.api import ExecutionOut

    for key in ExecutionOut.model_fields:
        if key in detail:
            console.print(f"[bold]{key}[/]: {escape(cell(detail[key]))}")
    link = trace_link(detail.get("trace_id"))
    if link:
        console.print(f"[bold]trace[/]: {escape(link)}")
    attempts = detail.get("attempt_history") or (
        detail["attempts"] if isinstance(detail.get("attempts"), list) else None
    )
    if attempts:
        _table(
            console, "attempts", ATTEMPT_COLUMNS, [{**a, "number": a.get("number", a.get("attempt"))} for a in attempts]
        )
    if detail.get("steps"):
        steps = [
            {**s, "status": "failed (continued)" if s.get("continued") else s.get("status")} for s in detail["steps"]
        ]
        _table(console, "steps", STEP_COLUMNS, steps)
    for key in ("input", "output"):
        if detail.get(key) is not None:
            console.print(f"[bold]{key}[/]:")
            console.print(escape(json.dumps(detail[key], indent=2, default=str)))


def _table(console: Console, title: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(escape(cell(row.get(col))) for col in columns))
    console.print(table)
