"""``ipaas context list|use|delete``: several servers, one of them current."""

from __future__ import annotations

from typing import Annotated

import typer

from ipaas_cli import config as cfg
from ipaas_cli.errors import UsageError
from ipaas_cli.output import guarded
from ipaas_cli.session import JsonOpt

app = typer.Typer(help="Contexts: one server (and its login) each; commands use the current one.", no_args_is_help=True)


@app.command("list")
def list_contexts(json_out: JsonOpt = False) -> None:
    """Every context, with its server and whether it holds a token (never the token)."""
    with guarded(json_out) as out:
        config = cfg.load()
        rows = [
            {
                "name": name,
                "current": name == config.current,
                "server": c.server,
                "email": c.email,
                "logged_in": bool(c.token),
                "expires_at": c.expires_at,
            }
            for name, c in sorted(config.contexts.items())
        ]
        out.table(
            rows,
            ["name", "current", "server", "email", "logged_in", "expires_at"],
            empty="no contexts: run `ipaas login --server URL`",
        )


@app.command("use")
def use(
    name: Annotated[str, typer.Argument(help="A context from `ipaas context list`.")], json_out: JsonOpt = False
) -> None:
    """Make a context current."""
    with guarded(json_out) as out:
        config = cfg.load()
        if name not in config.contexts:
            raise UsageError(f"no context named {name!r}: see `ipaas context list`")
        config.current = name
        cfg.save(config)
        out.result({"current": name}, lambda c: c.print(f"now using context {name!r}"))


@app.command("delete")
def delete(name: Annotated[str, typer.Argument()], json_out: JsonOpt = False) -> None:
    """Forget a context (its server and token)."""
    with guarded(json_out) as out:
        config = cfg.load()
        if config.contexts.pop(name, None) is None:
            raise UsageError(f"no context named {name!r}")
        if config.current == name:
            config.current = None
        cfg.save(config)
        out.result({"deleted": name}, lambda c: c.print(f"context {name!r} deleted"))
