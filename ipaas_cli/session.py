"""The global options (``--context``, ``--server``), the options every command shares, and the API they pick."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from ipaas_cli.client import DEFAULT_TIMEOUT, Api
from ipaas_cli.config import resolve
from ipaas_cli.errors import UsageError
from ipaas_cli.output import guarded

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output: one JSON document on stdout.")]


@dataclass
class Globals:
    context: str | None = None
    server: str | None = None
    timeout: float = DEFAULT_TIMEOUT


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Globals) else Globals()


def api_of(ctx: typer.Context, *, auth: bool = True) -> Api:
    """The API of the chosen context; ``auth`` requires a token (``IPAAS_TOKEN`` or a stored login)."""
    g = globals_of(ctx)
    target = resolve(g.context, g.server)
    if auth and not target.token:
        raise UsageError(f"not logged in to {target.server}: run `ipaas login` or set IPAAS_TOKEN")
    return Api(target.server, target.token, g.timeout)


def show_list(
    ctx: typer.Context, json_out: bool, path: str, columns: list[str], empty: str, feature: str | None = None
) -> None:
    """Every row of a list, as a table or JSON (``feature``: see :meth:`Api.pages`)."""
    with guarded(json_out) as out:
        out.table(list(api_of(ctx).pages(path, {"limit": 100}, feature=feature)), columns, empty=empty)
