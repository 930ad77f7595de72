"""Contexts (one per server): where they are kept, and how a command picks one.

The file is ``$XDG_CONFIG_HOME/ipaas/config.json`` (``~/.config/ipaas/config.json``
when unset), written with mode 0600 in a 0700 directory, replaced atomically::

    {"current": "prod",
     "contexts": {"prod": {"server": "https://ipaas.example.com", "token": "...",
                           "email": "ops@example.com", "expires_at": "2026-01-01T10:15:00+00:00"}}}

``IPAAS_TOKEN`` (a login token or an ``ipk_`` API key) overrides the stored token,
``IPAAS_SERVER`` the stored server and ``IPAAS_CONTEXT`` the current context, so a
CI job needs no file at all.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipaas_cli.errors import UsageError
from ipaas_cli.settings import CliSettings

DEFAULT_CONTEXT = "default"
FILE_MODE = 0o600
DIR_MODE = 0o700


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ipaas" / "config.json"


@dataclass
class Context:
    server: str
    token: str | None = None
    email: str | None = None
    expires_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Config:
    current: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"current": self.current, "contexts": {n: c.as_dict() for n, c in self.contexts.items()}}


def load(path: Path | None = None) -> Config:
    path = path or config_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Config()
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the config file {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("contexts", {}), dict):
        raise UsageError(f"the config file {path} is not an ipaas config")
    contexts: dict[str, Context] = {}
    for name, ctx in raw.get("contexts", {}).items():
        if not isinstance(ctx, dict) or not isinstance(ctx.get("server"), str):
            raise UsageError(f"context {name!r} in {path} has no server")
        contexts[name] = Context(
            server=ctx["server"], token=ctx.get("token"), email=ctx.get("email"), expires_at=ctx.get("expires_at")
        )
    current = raw.get("current")
    return Config(current=current if isinstance(current, str) else None, contexts=contexts)


def save(config: Config, path: Path | None = None) -> Path:
    """Write the whole file, 0600, through a temporary file in the same directory (atomic)."""
    path = path or config_path()
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(config.as_dict(), fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, FILE_MODE)
    return path


def chosen_context(chosen: str | None) -> tuple[Config, str, Context | None]:
    """The config, the name of the context a command uses (``--context``, else ``IPAAS_CONTEXT``, else the
    current one) and that context, if it is stored."""
    config = load()
    name = chosen or CliSettings().context or config.current or DEFAULT_CONTEXT
    return config, name, config.contexts.get(name)


@dataclass(frozen=True)
class Target:
    """Where a command sends requests, and with which bearer token (if any)."""

    server: str
    token: str | None
    context: str


def resolve(chosen: str | None, server: str | None = None) -> Target:
    _, name, ctx = chosen_context(chosen)
    env = CliSettings()
    if chosen is not None and ctx is None and server is None and not env.server:
        raise UsageError(f"no context named {name!r}: see `ipaas context list`")
    url = server or env.server or (ctx.server if ctx else None)
    if not url:
        raise UsageError("no server configured: run `ipaas login --server URL` or set IPAAS_SERVER")
    url = url.rstrip("/")
    # A stored token goes only to the server it was issued by.
    stored = ctx.token if ctx is not None and ctx.server.rstrip("/") == url else None
    token = env.token or stored
    return Target(server=url, token=token, context=name)
