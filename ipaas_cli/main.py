"""``ipaas``: the command tree.  Each group lives in :mod:`ipaas_cli.commands`.

Exit codes: 0 ok, 1 the API refused (4xx), 2 usage, 3 unreachable or 5xx.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ipaas_cli.client import DEFAULT_TIMEOUT
from ipaas_cli.commands import api_keys, contexts, credentials, dlq, executions, keys, webhook, workflows
from ipaas_cli.commands.apply import apply
from ipaas_cli.commands.login import login, logout
from ipaas_cli.commands.trace import trace
from ipaas_cli.session import Globals

app = typer.Typer(
    name="ipaas",
    help="Command-line client of the ipaas API. Exit codes: 0 ok, 1 API error (4xx), 2 usage, 3 unreachable/5xx.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    context: Annotated[
        str | None,
        typer.Option("--context", "-c", help="Use this context (default: IPAAS_CONTEXT, else the current one)."),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option("--server", help="Talk to this gateway URL (default: IPAAS_SERVER, else the context's)."),
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for each HTTP answer.")] = DEFAULT_TIMEOUT,
) -> None:
    ctx.obj = Globals(context=context, server=server, timeout=timeout)


app.command()(login)
app.command()(logout)
app.command()(apply)
app.command()(trace)
app.add_typer(contexts.app, name="context")
app.add_typer(workflows.app, name="workflows")
app.add_typer(webhook.app, name="webhook")
app.add_typer(executions.app, name="executions")
app.add_typer(dlq.app, name="dlq")
app.add_typer(credentials.app, name="credentials")
app.add_typer(api_keys.app, name="api-keys")
app.add_typer(keys.app, name="keys")


def main() -> None:
    app()
