"""``ipaas trace <event_id>``: what happened to the event a 202 named.

It finds the execution by ``event_id`` (a filter of ``GET /api/executions``;
against a server without that filter, the newest 1,000 executions are
searched), then prints the execution, its attempts and its trace link.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ipaas_cli.commands.executions import query, show_execution
from ipaas_cli.errors import ApiError, UsageError
from ipaas_cli.output import guarded
from ipaas_cli.session import JsonOpt, api_of
from ipaas_cli.workflow_ref import is_uuid


def trace(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="The event_id of a 202.")],
    json_out: JsonOpt = False,
) -> None:
    """The execution of one event: its status, attempts, input, output, error and trace link."""
    with guarded(json_out) as out:
        if not is_uuid(event_id):
            raise UsageError(f"an event_id is a UUID, got {event_id!r}")
        api = api_of(ctx)
        found = next(query(api, workflow=None, status=None, event_id=event_id, limit=1), None)
        if found is None:
            raise ApiError(404, "not_found", f"no execution for event {event_id} (yet)")
        show_execution(out, api, found["id"])
