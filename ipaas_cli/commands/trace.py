"""``ipaas trace <event_id>``: what happened to the event a 202 named.

It finds the execution by ``event_id`` (a filter of ``GET /api/executions``;
against a server without that filter, the newest 1,000 executions are
searched), then prints the execution, its attempts and its trace link.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ipaas_cli.commands.executions import query
from ipaas_cli.errors import ApiError, UsageError
from ipaas_cli.output import Output, guarded
from ipaas_cli.session import JsonOpt, api_of
from ipaas_cli.trace_view import render_execution, trace_link
from ipaas_cli.workflow_ref import is_uuid


def trace(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="The event_id of a 202.")],
    json_out: JsonOpt = False,
) -> None:
    """The execution of one event: its status, attempts, input, output, error and trace link."""
    out = Output(json_out)
    with guarded(out):
        if not is_uuid(event_id):
            raise UsageError(f"an event_id is a UUID, got {event_id!r}")
        api = api_of(ctx)
        found = next(query(api, workflow=None, status=None, event_id=event_id, limit=1), None)
        if found is None:
            raise ApiError(404, "not_found", f"no execution for event {event_id} (yet)")
        detail: dict[str, Any] = api.call("GET", f"/api/executions/{found['id']}").data
        detail["trace_url"] = trace_link(detail.get("trace_id"))
        out.result(detail, lambda console: render_execution(console, detail))
