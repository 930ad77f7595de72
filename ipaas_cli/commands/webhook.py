"""``ipaas webhook send <workflow> --data @file.json``: a signed webhook, its 202, and a ready curl.

The API shows a workflow's ``whsec_`` secret only when it is created (``POST
/api/workflows``, so ``ipaas apply`` prints it) and when it is rotated; no GET
returns it.  So the secret comes from ``--secret-file`` or ``IPAAS_WEBHOOK_SECRET``,
or ``--rotate-secret`` asks the API for a new one (the previous secret stays
valid for 24 h, so senders holding it keep working).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ipaas_cli import signing
from ipaas_cli.client import Api
from ipaas_cli.errors import UsageError
from ipaas_cli.output import guarded
from ipaas_cli.session import JsonOpt, api_of
from ipaas_cli.settings import CliSettings
from ipaas_cli.workflow_ref import find_workflow

app = typer.Typer(help="Send signed webhooks (Standard Webhooks).", no_args_is_help=True)


def read_data(data: str) -> bytes:
    """``@file.json``, ``@-`` (stdin) or the JSON itself; it must parse as JSON."""
    if data == "@-":
        raw = sys.stdin.buffer.read()
    elif data.startswith("@"):
        try:
            raw = Path(data[1:]).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {data[1:]}: {exc.strerror or exc}") from exc
    else:
        raw = data.encode()
    try:
        json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"--data is not JSON: {exc}") from exc
    return raw


def _secret(api: Api, workflow_id: str, secret_file: Path | None, rotate: bool) -> str:
    if secret_file is not None:
        try:
            return secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read {secret_file}: {exc.strerror or exc}") from exc
    from_env = CliSettings().webhook_secret
    if from_env:
        return from_env.strip()
    if rotate:
        secret: str = api.call("POST", f"/api/workflows/{workflow_id}/webhook-secret").data["webhook"]["secret"]
        return secret
    raise UsageError(
        "the API shows a webhook secret only at creation and rotation: give --secret-file, "
        "set IPAAS_WEBHOOK_SECRET, or pass --rotate-secret to get a new one"
    )


@app.command("send")
def send(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow's id or name (a webhook trigger).")],
    data: Annotated[str, typer.Option("--data", "-d", help="@file.json, @- for stdin, or the JSON itself.")],
    secret_file: Annotated[Path | None, typer.Option(help="A file holding the whsec_ secret.")] = None,
    rotate_secret: Annotated[
        bool, typer.Option("--rotate-secret", help="Rotate the secret through the API and sign with the new one.")
    ] = False,
    msg_id: Annotated[str | None, typer.Option("--id", help="webhook-id (default: a new msg_... id).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign a payload with the workflow's secret and POST it to its webhook URL."""
    with guarded(json_out) as out:
        body = read_data(data)
        api = api_of(ctx)
        wf = find_workflow(api, workflow)
        if not wf.get("webhook"):
            raise UsageError(f"workflow {wf['name']!r} has a {wf['trigger']['type']} trigger, not a webhook")
        secret = _secret(api, wf["id"], secret_file, rotate_secret)
        url = api.url(wf["webhook"]["url"])
        sent = signing.headers(secret, msg_id or f"msg_{uuid.uuid4().hex}", int(time.time()), body)
        reply = api.raw("POST", url, body, sent)
        shown = {
            "status": reply.status,
            **(reply.data or {}),
            "traceparent": reply.headers.get("traceparent"),
            "url": url,
            "curl": signing.curl(url, sent, body),
        }

        def human(console: Console) -> None:
            console.print(
                f"[green]{reply.status} Accepted[/] event_id {shown.get('event_id')}"
                + (" (duplicate)" if shown.get("duplicate") else "")
            )
            console.print("the same request with curl (valid for 5 minutes):")
            console.print(escape(shown["curl"]), soft_wrap=True)

        out.result(shown, human)
