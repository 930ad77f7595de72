"""``ipaas dlq list`` and ``ipaas dlq replay`` (one event, or every dead letter matching a filter).

A bulk replay (``POST /api/dlq/replay``) is a job on the server: the command
polls ``GET /api/dlq/replay/{job_id}`` and shows a progress bar until it is
done (``--no-wait`` prints the job id and returns).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ipaas_cli.client import Api
from ipaas_cli.durations import iso, parse_since
from ipaas_cli.errors import Unavailable, UsageError
from ipaas_cli.output import Output, guarded
from ipaas_cli.session import JsonOpt, api_of
from ipaas_cli.workflow_ref import WorkflowOpt, is_uuid, workflow_id

app = typer.Typer(help="The dead-letter queue: list and replay.", no_args_is_help=True)

COLUMNS = ["event_id", "workflow_id", "reason", "attempts", "dead_at", "replayed_at"]
BULK = "bulk DLQ replay (POST /api/dlq/replay)"


@app.command("list")
def list_dlq(
    ctx: typer.Context,
    workflow: WorkflowOpt = None,
    include_replayed: Annotated[bool, typer.Option("--include-replayed")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Dead letters, newest first."""
    with guarded(json_out) as out:
        api = api_of(ctx)
        params: dict[str, Any] = {"limit": min(limit, 100), "include_replayed": include_replayed or None}
        params["workflow_id"] = workflow_id(api, workflow)
        rows = list(api.pages("/api/dlq", params, max_rows=limit))
        columns = COLUMNS + [c for c in ("last_error",) if any(c in r for r in rows)]
        out.table(rows, columns, empty="the dead-letter queue is empty")


def _wait(api: Api, job: dict[str, Any], out: Output, timeout: float, interval: float) -> dict[str, Any]:
    job_id = job.get("id") or job.get("job_id")
    deadline = time.monotonic() + timeout
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=out.err,
        disable=out.as_json,
        transient=False,
    ) as bar:
        task = bar.add_task("replay", total=job.get("total"), completed=job.get("done", 0))
        while job.get("state") in (None, "running", "pending", "queued"):  # not finished yet
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"replay job {job_id} still running after {timeout:.0f}s "
                    f"(ipaas dlq replay --job {job_id} follows it again)"
                )
            time.sleep(interval)
            job = api.call("GET", f"/api/dlq/replay/{job_id}").data
            bar.update(task, total=job.get("total"), completed=job.get("done", 0))
    return job


@app.command("replay")
def replay(
    ctx: typer.Context,
    event_id: Annotated[str | None, typer.Argument(help="Replay this one dead letter.")] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Bulk: this workflow's dead letters.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Bulk: dead since (2h, 30m, 7d or an ISO time).")] = None,
    until: Annotated[str | None, typer.Option(help="Bulk: dead before (2h, 30m, 7d or an ISO time).")] = None,
    reason: Annotated[str | None, typer.Option(help="Bulk: the reason contains this text.")] = None,
    job: Annotated[str | None, typer.Option("--job", help="Follow a bulk replay job already started.")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Bulk: print the job and return.")] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Bulk: give up waiting after this many seconds.")] = 600,
    json_out: JsonOpt = False,
) -> None:
    """Replay one dead letter by event_id, or every one that matches filters (a job, with a progress bar)."""
    with guarded(json_out) as out:
        bulk = any(v is not None for v in (workflow, since, until, reason))
        if sum((event_id is not None, bulk, job is not None)) != 1:
            raise UsageError("give an event_id, or filters (--workflow, --since, --until, --reason), or --job")
        api = api_of(ctx)
        if event_id is not None:
            if not is_uuid(event_id):
                raise UsageError(f"an event_id is a UUID, got {event_id!r}")
            done = api.call("POST", f"/api/dlq/{event_id}/replay").data
            out.result(done, lambda c: c.print(f"replaying {event_id} (202 Accepted)"))
            return
        if job is not None:
            started = api.call("GET", f"/api/dlq/replay/{job}", feature=BULK).data
        else:
            body: dict[str, Any] = {"reason": reason, "workflow_id": workflow_id(api, workflow)}
            if since is not None:
                body["since"] = iso(parse_since(since))
            if until is not None:
                body["until"] = iso(parse_since(until))
            started = api.call(
                "POST", "/api/dlq/replay", {k: v for k, v in body.items() if v is not None}, feature=BULK
            ).data
        if no_wait:
            out.result(started, lambda c: c.print(f"replay job {started.get('id')}: {started.get('total')} to go"))
            return
        final = _wait(api, started, out, timeout, interval=0.5)
        out.result(
            final,
            lambda c: c.print(
                f"replay job {final.get('id')} {final.get('state')}: {final.get('done')}/{final.get('total')} "
                f"dead letters handled ({final.get('skipped', 0)} skipped)"
            ),
        )
