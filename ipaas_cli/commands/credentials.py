"""``ipaas credentials create|list|delete``: the secret is read from stdin or a file, never from argv.

The secret is the JSON object of ``POST /api/credentials`` (``{"webhook_url": ...}``
or ``{"bot_token": ...}`` for slack, ``{"webhook_url": ...}`` for discord,
``{"api_key": ...}`` for openweather, ``{"headers": {...}}`` for http).  For slack,
discord and openweather a bare value (not JSON) is taken as the webhook URL or API
key; for slack, a bare value shaped like a Slack token (``xoxb-...``) is the bot token.
"""

from __future__ import annotations

import json
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ipaas_cli.errors import UsageError
from ipaas_cli.output import guarded
from ipaas_cli.session import JsonOpt, api_of, show_list

app = typer.Typer(help="Credentials in the vault (secrets are never shown).", no_args_is_help=True)


class CredentialType(StrEnum):
    slack = "slack"
    discord = "discord"
    openweather = "openweather"
    http = "http"


# A bare slack secret that starts like a Slack token is a bot token (the API checks the rest of its shape).
SLACK_TOKEN_START = re.compile(r"^xox[a-z]-")

BARE_FIELD = {
    CredentialType.slack: "webhook_url",
    CredentialType.discord: "webhook_url",
    CredentialType.openweather: "api_key",
}


def secret_of(kind: CredentialType, text: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        raise UsageError("the secret is empty: pipe it on stdin or give --from-file")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    if kind is CredentialType.slack and SLACK_TOKEN_START.match(text):
        return {"bot_token": text}
    if kind in BARE_FIELD:
        return {BARE_FIELD[kind]: text}
    raise UsageError('an http credential\'s secret is a JSON object: {"headers": {"Authorization": "..."}}')


def _read_secret(from_file: Path | None) -> str:
    if from_file is not None:
        try:
            return from_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {from_file}: {exc.strerror or exc}") from exc
    if sys.stdin.isatty():
        return str(typer.prompt("secret", hide_input=True, err=True))
    return sys.stdin.read()


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name to refer to it by (e.g. in YAML: `credential: <name>`).")],
    kind: Annotated[CredentialType, typer.Option("--type", "-t", help="slack, discord, openweather or http.")],
    from_file: Annotated[Path | None, typer.Option("--from-file", help="Read the secret from this file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Store a credential; its secret comes from stdin (or --from-file)."""
    with guarded(json_out) as out:
        secret = secret_of(kind, _read_secret(from_file))
        created = (
            api_of(ctx).call("POST", "/api/credentials", {"name": name, "type": kind.value, "secret": secret}).data
        )
        out.result(created, lambda c: c.print(f"credential {created['name']!r} stored: {created['id']}"))


@app.command("list")
def list_credentials(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Every credential's id, name and type."""
    empty = "no credentials: `ipaas credentials create NAME --type slack < secret.json`"
    show_list(ctx, json_out, "/api/credentials", ["id", "name", "type", "created_at"], empty)


@app.command("delete")
def delete(
    ctx: typer.Context, credential: Annotated[str, typer.Argument(help="Its id or name.")], json_out: JsonOpt = False
) -> None:
    """Delete a credential."""
    with guarded(json_out) as out:
        api = api_of(ctx)
        ids = [c["id"] for c in api.pages("/api/credentials", {"limit": 100}) if credential in (c["id"], c["name"])]
        if len(ids) > 1:
            raise UsageError(f"{len(ids)} credentials are named {credential!r}: give the id")
        target = ids[0] if ids else credential
        done = api.call("DELETE", f"/api/credentials/{target}").data
        out.result(done, lambda c: c.print(f"credential {target} deleted"))
