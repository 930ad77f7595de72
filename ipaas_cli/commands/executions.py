"""``ipaas executions list|get|tail``.

Filters ``--event-id``, ``--trigger``, ``--since`` and ``--until`` are sent to
the server and also applied to the rows that come back, so a server that does
not know them yet (it ignores unknown parameters) still gives the right rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import typer

from ipaas_cli.client import Api
from ipaas_cli.durations import iso, parse_since
from ipaas_cli.errors import UsageError
from ipaas_cli.output import Output, guarded
from ipaas_cli.session import JsonOpt, api_of
from ipaas_cli.trace_view import render_execution, trace_link
from ipaas_cli.workflow_ref import WorkflowOpt, workflow_id

app = typer.Typer(help="Executions: list, inspect, and follow live.", no_args_is_help=True)

COLUMNS = ["id", "event_id", "workflow_id", "trigger", "status", "attempts", "started_at", "duration_ms", "error"]
STATUSES = ("running", "succeeded", "failed", "dead", "skipped", "filtered")
TAIL_PAGE = 50


def matches(
    row: dict[str, Any], *, event_id: str | None, trigger: str | None, since: datetime | None, until: datetime | None
) -> bool:
    raw = row.get("started_at") or row.get("finished_at")
    when = datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else None
    return (
        (event_id is None or row.get("event_id") == event_id)
        and (trigger is None or row.get("trigger") == trigger)
        and (since is None or (when is not None and when >= since))
        and (until is None or (when is not None and when < until))
    )


def query(
    api: Api,
    *,
    workflow: str | None,
    status: str | None,
    event_id: str | None = None,
    trigger: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
    scan: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Matching executions, newest first; at most ``scan`` rows are read from the server."""
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status must be one of {', '.join(STATUSES)}")
    after = parse_since(since) if since else None
    before = parse_since(until) if until else None
    params: dict[str, Any] = {
        "limit": 100,
        "status": status,
        "event_id": event_id,
        "trigger": trigger,
        "since": iso(after) if after else None,
        "until": iso(before) if before else None,
        "workflow_id": workflow_id(api, workflow),
    }
    found = 0
    for row in api.pages("/api/executions", params, max_rows=scan):
        if matches(row, event_id=event_id, trigger=trigger, since=after, until=before):
            yield row
            found += 1
            if limit is not None and found >= limit:
                return


@app.command("list")
def list_executions(
    ctx: typer.Context,
    workflow: WorkflowOpt = None,
    status: Annotated[str | None, typer.Option(help="running, succeeded, failed, dead or skipped.")] = None,
    event_id: Annotated[str | None, typer.Option("--event-id", help="The event_id a 202 gave.")] = None,
    trigger: Annotated[str | None, typer.Option(help="webhook, schedule or manual.")] = None,
    since: Annotated[str | None, typer.Option(help="Started after: 2h, 30m, 7d or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="Started before: 2h, 30m, 7d or an ISO time.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Executions, newest first."""
    with guarded(json_out) as out:
        rows = list(
            query(
                api_of(ctx),
                workflow=workflow,
                status=status,
                event_id=event_id,
                trigger=trigger,
                since=since,
                until=until,
                limit=limit,
            )
        )
        out.table(rows, COLUMNS, empty="no executions match: send a webhook (`ipaas webhook send`) or widen filters")


def show_execution(out: Output, api: Api, execution_id: str) -> None:
    """One execution, with its trace link, as a table or JSON."""
    detail = api.call("GET", f"/api/executions/{execution_id}").data
    detail["trace_url"] = trace_link(detail.get("trace_id"))
    out.result(detail, lambda console: render_execution(console, detail))


@app.command("get")
def get(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The execution's id.")],
    json_out: JsonOpt = False,
) -> None:
    """One execution: status, attempts, input and output (secrets masked), error, trace link."""
    with guarded(json_out) as out:
        show_execution(out, api_of(ctx), execution_id)


def tail_line(row: dict[str, Any]) -> str:
    error = f"  {row['error']}" if row.get("error") else ""
    return (
        f"{row.get('started_at') or '-'}  {row['status']:<9}  {row['id']}  event {row['event_id']}  "
        f"workflow {row['workflow_id']}  attempts {row.get('attempts')}{error}"
    )


def _newest(api: Api, params: dict[str, Any], known: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of the newest pages, following the cursor until a page reaches rows already seen."""
    rows: list[dict[str, Any]] = []
    page_params = dict(params)
    for _ in range(20):
        reply = api.call("GET", "/api/executions", query=page_params)
        rows.extend(reply.data or [])
        cursor = reply.meta.get("next_cursor")
        if not cursor or not known or any(r["id"] in known for r in reply.data or []):
            break
        page_params["cursor"] = cursor
    return rows


@app.command("tail")
def tail(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new executions.")] = False,
    workflow: WorkflowOpt = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Recent executions shown first.")] = 10,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")] = 0.5,
    count: Annotated[int | None, typer.Option(min=1, help="Exit after this many new lines (with -f).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The latest executions, oldest first; with -f, new ones and status changes as they happen (JSON lines)."""
    with guarded(json_out) as out:
        api = api_of(ctx)
        params: dict[str, Any] = {"limit": TAIL_PAGE, "workflow_id": workflow_id(api, workflow)}
        known: dict[str, str] = {}  # id -> last status printed
        first = _newest(api, params, known)
        for row in reversed(first[:lines]):
            out.line(row, tail_line(row))
        known.update({r["id"]: r["status"] for r in first})
        if follow:
            out.note("following new executions (Ctrl-C stops)")
        printed = 0
        try:
            while follow and (count is None or printed < count):
                time.sleep(interval)
                for row in reversed(_newest(api, params, known)):
                    if known.get(row["id"]) != row["status"]:
                        known[row["id"]] = row["status"]
                        out.line(row, tail_line(row))
                        printed += 1
        except KeyboardInterrupt:
            return
