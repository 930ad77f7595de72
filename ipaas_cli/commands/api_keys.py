"""``ipaas api-keys create|list|revoke``: long-lived ``ipk_`` keys for scripts and CI (``/api/keys``).

A key is shown once, when created.  Give it to a script as ``IPAAS_TOKEN``, or
store it with ``ipaas login --api-key-stdin``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from ipaas_cli.output import guarded
from ipaas_cli.session import JsonOpt, api_of, show_list

app = typer.Typer(help="API keys (ipk_...): create, list, revoke.", no_args_is_help=True)

FEATURE = "API keys (/api/keys)"


class Scope(StrEnum):
    read = "read"
    write = "write"
    replay = "replay"
    admin = "admin"


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. ci-deploy.")],
    scopes: Annotated[list[Scope], typer.Option("--scope", "-s", help="read, write, replay or admin; repeat.")],
    json_out: JsonOpt = False,
) -> None:
    """Create a key; it is shown once."""
    with guarded(json_out) as out:
        created = (
            api_of(ctx)
            .call("POST", "/api/keys", {"name": name, "scopes": [s.value for s in scopes]}, feature=FEATURE)
            .data
        )
        out.result(
            created,
            lambda c: c.print(
                f"key {created.get('id')} ({', '.join(created.get('scopes', []))}): {created.get('key')}\n"
                "it is shown only now: store it (e.g. as IPAAS_TOKEN in your CI's secrets)"
            ),
        )


@app.command("list")
def list_keys(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Keys of your tenant (never the key itself), with their last use."""
    columns = ["id", "name", "scopes", "prefix", "created_at", "last_used_at", "revoked_at"]
    show_list(
        ctx, json_out, "/api/keys", columns, "no API keys: `ipaas api-keys create NAME --scope read`", feature=FEATURE
    )


@app.command("revoke")
def revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")], json_out: JsonOpt = False
) -> None:
    """Revoke a key (the gateway refuses it within a few seconds)."""
    with guarded(json_out) as out:
        done = api_of(ctx).call("DELETE", f"/api/keys/{key_id}", feature=FEATURE).data
        out.result(done, lambda c: c.print(f"key {key_id} revoked"))
