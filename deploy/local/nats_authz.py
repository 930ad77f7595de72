"""The nats-server ``authorization`` block for the identities of :mod:`libs.common.bus.permissions`.

The table (who may publish and subscribe to what, including the JetStream API) lives in
``libs``, so ``make up``, the tests and Kubernetes share it; this module only renders it
into nats-server's config syntax, one user per identity with a password, and writes the
file readable by its owner only.

Services connect with ``Bus.connect(..., inbox_prefix=inbox_prefix(name))`` and the user and
password in ``NATS_URL`` (``nats://user:password@host:port``).  ``admin`` is for people and
tooling on a local ``make up`` (the ``nats`` CLI, the provisioning step); deployments leave it
out, and use ``provisioner`` for provisioning instead.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Collection, Mapping
from pathlib import Path

from libs.common.bus.permissions import ALL_IDENTITIES, Layout, permissions

PASSWORD_BYTES = 24


def _quote(value: str) -> str:
    # nats-server's config accepts JSON-style double-quoted strings.
    return json.dumps(value)


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


def _rule(direction: str, rule: dict[str, list[str]]) -> str:
    """One direction (publish, subscribe) of a user's permissions: what it allows, and denies if anything."""
    deny = f", deny = {_list(rule['deny'])}" if "deny" in rule else ""
    return f"        {direction} = {{ allow = {_list(rule['allow'])}{deny} }}"


def render_authorization(passwords: Mapping[str, str], layout: Layout | None = None) -> str:
    """An ``authorization { users = [...] }`` block for every identity in ``passwords``.

    ``passwords`` maps identity (auth, gateway, executor, scheduler, provisioner, admin) to its
    password; ``layout`` names the streams and consumer (the settings' defaults if not given).
    """
    unknown = set(passwords) - set(ALL_IDENTITIES)
    if unknown:
        raise ValueError(f"unknown NATS identities: {sorted(unknown)}")
    users: list[str] = []
    for identity in ALL_IDENTITIES:
        if identity not in passwords:
            continue
        password = passwords[identity]
        if not password:
            raise ValueError(f"empty NATS password for {identity}")
        perms = permissions(identity, layout)
        lines = [
            "    {",
            f"      user = {_quote(identity)}",
            f"      password = {_quote(password)}",
            "      permissions = {",
            _rule("publish", perms["publish"]),
            _rule("subscribe", perms["subscribe"]),
        ]
        if "allow_responses" in perms:
            lines.append('        allow_responses = { max: 1, expires: "1m" }')
        lines += ["      }", "    }"]
        users.append("\n".join(lines))
    return "authorization {\n  users = [\n" + "\n".join(users) + "\n  ]\n}\n"


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by its owner only, never briefly readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    path.chmod(0o600)  # the file may have existed with a wider mode
    return path


def stored_passwords(path: Path, names: Collection[str]) -> dict[str, str]:
    """A password per name (NATS identities, Postgres roles), kept in ``path`` (0600) across starts.

    The stored one where there is one, else a new random one (then stored); other names in the
    file, and values that are not strings, are dropped.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    stored = {k: v for k, v in raw.items() if k in names and isinstance(v, str) and v} if isinstance(raw, dict) else {}
    passwords = {name: stored.get(name) or secrets.token_urlsafe(PASSWORD_BYTES) for name in names}
    path.parent.mkdir(parents=True, exist_ok=True)
    if passwords != stored:
        write_private(path, json.dumps(passwords, indent=2, sort_keys=True) + "\n")
    else:
        path.chmod(0o600)
    return passwords


def write_config(path: Path, passwords: Mapping[str, str], layout: Layout | None = None) -> Path:
    """Write a nats-server config holding only the authorization block (0600)."""
    return write_private(path, render_authorization(passwords, layout))
