"""``ipaas login`` / ``ipaas logout``: a token (or an ``ipk_`` API key) stored in a context."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console

from ipaas_cli import config as cfg
from ipaas_cli.client import Api
from ipaas_cli.errors import UsageError
from ipaas_cli.output import guarded
from ipaas_cli.session import JsonOpt, globals_of
from ipaas_cli.settings import CliSettings

API_KEY_PREFIX = "ipk_"


def _read_stdin_line(what: str) -> str:
    value = sys.stdin.readline().strip()
    if not value:
        raise UsageError(f"expected the {what} on stdin, got nothing")
    return value


def login(
    ctx: typer.Context,
    server: Annotated[str | None, typer.Option(help="The gateway's URL, e.g. http://127.0.0.1:8080.")] = None,
    email: Annotated[str | None, typer.Option(help="Prompted for when not given.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    api_key_stdin: Annotated[
        bool, typer.Option("--api-key-stdin", help="Store an ipk_ API key read from stdin instead of logging in.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Log in (email and password) or store an API key, in the chosen context; it becomes current."""
    with guarded(json_out) as out:
        g = globals_of(ctx)
        config, name, known = cfg.chosen_context(g.context)
        url = server or g.server or CliSettings().server or (known.server if known else None)
        if not url:
            raise UsageError("no server: give --server URL (the gateway, e.g. http://127.0.0.1:8080)")
        url = url.rstrip("/")
        if api_key_stdin:
            key = _read_stdin_line("API key")
            if not key.startswith(API_KEY_PREFIX):
                raise UsageError(f"an API key starts with {API_KEY_PREFIX!r}")
            Api(url, key, g.timeout).call("GET", "/api/workflows", query={"limit": 1})  # does the key work?
            context = cfg.Context(server=url, token=key)
        else:
            email = email or typer.prompt("email", err=True)
            password = (
                _read_stdin_line("password") if password_stdin else typer.prompt("password", hide_input=True, err=True)
            )
            got = (
                Api(url, None, g.timeout)
                .call("POST", "/api/auth/login", {"email": email, "password": password}, auth=False)
                .data
            )
            expires = datetime.now(UTC) + timedelta(seconds=int(got.get("expires_in") or 0))
            context = cfg.Context(
                server=url, token=got["access_token"], email=email, expires_at=expires.isoformat(timespec="seconds")
            )
        config.contexts[name] = context
        config.current = name
        path = cfg.save(config)
        shown = {
            "context": name,
            "server": url,
            "email": context.email,
            "expires_at": context.expires_at,
            "api_key": api_key_stdin,
            "config": str(path),
        }

        def human(console: Console) -> None:
            who = "an API key" if api_key_stdin else context.email
            until = f" until {context.expires_at}" if context.expires_at else ""
            console.print(f"logged in to {url} as {who}{until} (context {name!r}, saved in {path})")

        out.result(shown, human)


def logout(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Forget the chosen context's token (a login token is revoked on the server first)."""
    with guarded(json_out) as out:
        g = globals_of(ctx)
        config, name, known = cfg.chosen_context(g.context)
        if known is None or not known.token:
            raise UsageError(f"context {name!r} holds no token")
        if not known.token.startswith(API_KEY_PREFIX):
            Api(known.server, known.token, g.timeout).call("POST", "/api/auth/logout")
        known.token, known.expires_at = None, None
        cfg.save(config)
        out.result({"context": name, "logged_out": True}, lambda c: c.print(f"logged out of context {name!r}"))
