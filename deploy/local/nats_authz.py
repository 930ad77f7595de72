"""The nats-server ``authorization`` block for the service identities.

Each service connects as its own user and gets its own reply-inbox prefix
(``_INBOX_<identity>``), which only it may subscribe to.  The credential
subject ``svc.auth.>`` is reachable only by the executor (publish) and auth
(subscribe); auth answers through ``allow_responses`` and may publish nothing
else.  Services connect with ``Bus.connect(..., inbox_prefix=inbox_prefix(name))``
and the user and password (in ``NATS_URL`` as ``nats://user:password@host:port``).

``admin`` is for people and tooling on a local ``make up`` only (stream
inspection, the ``nats`` CLI): everything except the credential subject and the
other identities' inboxes.  Deployments leave it out (no password, no user).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

IDENTITIES = ("auth", "gateway", "executor", "scheduler")
ADMIN = "admin"
# Every identity a local run creates a password for.
LOCAL_IDENTITIES = (*IDENTITIES, ADMIN)

# JetStream's API, acks and flow control: what a JetStream client publishes besides its subjects.
_JS_CLIENT = ["$JS.API.>", "$JS.ACK.>", "$JS.FC.>"]

PUBLISH: dict[str, list[str]] = {
    "auth": [],
    "gateway": ["events.>", "workflows.changed.>", "svc.executor.dry_run", *_JS_CLIENT],
    "executor": ["svc.auth.>", "dlq.>", *_JS_CLIENT],
    "scheduler": ["events.>", *_JS_CLIENT],
    ADMIN: [">"],
}
SUBSCRIBE: dict[str, list[str]] = {
    "auth": ["svc.auth.>"],
    "gateway": ["workflows.changed.>"],  # webhook cache invalidation
    "executor": ["svc.executor.dry_run"],  # dry-run requests from the gateway
    "scheduler": [],
    ADMIN: [">"],
}
PRIVATE = "svc.auth.>"
# Identities that answer requests: they may publish to the requester's reply subject.
RESPONDERS = ("auth", "executor")


def inbox_prefix(identity: str) -> str:
    return f"_INBOX_{identity}"


def _quote(value: str) -> str:
    # nats-server's config accepts JSON-style double-quoted strings.
    return json.dumps(value)


def _service_inboxes() -> list[str]:
    return [f"{inbox_prefix(i)}.>" for i in IDENTITIES]


def deny_publish(identity: str) -> list[str]:
    if identity == ADMIN:  # may not forge replies to a service, nor ask for credentials
        return [PRIVATE, *_service_inboxes()]
    return [] if identity == "executor" else [PRIVATE]


def deny_subscribe(identity: str) -> list[str]:
    if identity == ADMIN:  # may watch anything but the credential traffic and others' replies
        return [PRIVATE, *_service_inboxes()]
    return [] if identity == "auth" else [PRIVATE]


def permissions(identity: str) -> dict[str, Any]:
    """The ``permissions`` of one identity, as data (also the shape the NATS Helm chart takes)."""
    inbox = f"{inbox_prefix(identity)}.>"
    publish: dict[str, Any] = {"allow": [*PUBLISH[identity], inbox]}
    subscribe: dict[str, Any] = {"allow": [*SUBSCRIBE[identity], inbox]}
    if deny_publish(identity):
        publish["deny"] = deny_publish(identity)
    if deny_subscribe(identity):
        subscribe["deny"] = deny_subscribe(identity)
    perms: dict[str, Any] = {"publish": publish, "subscribe": subscribe}
    if identity in RESPONDERS:
        perms["allow_responses"] = {"max": 1, "expires": "1m"}
    return perms


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


def render_authorization(passwords: Mapping[str, str]) -> str:
    """An ``authorization { users = [...] }`` block for every identity in ``passwords``.

    ``passwords`` maps identity (auth, gateway, executor, scheduler) to its password.
    """
    unknown = set(passwords) - set(LOCAL_IDENTITIES)
    if unknown:
        raise ValueError(f"unknown NATS identities: {sorted(unknown)}")
    users: list[str] = []
    for identity in LOCAL_IDENTITIES:
        if identity not in passwords:
            continue
        password = passwords[identity]
        if not password:
            raise ValueError(f"empty NATS password for {identity}")
        perms = permissions(identity)
        publish, subscribe = perms["publish"], perms["subscribe"]
        lines = [
            "    {",
            f"      user = {_quote(identity)}",
            f"      password = {_quote(password)}",
            "      permissions = {",
            f"        publish = {{ allow = {_list(publish['allow'])}"
            + (f", deny = {_list(publish['deny'])}" if "deny" in publish else "") + " }",
            f"        subscribe = {{ allow = {_list(subscribe['allow'])}"
            + (f", deny = {_list(subscribe['deny'])}" if "deny" in subscribe else "") + " }",
        ]
        if "allow_responses" in perms:
            lines.append("        allow_responses = { max: 1, expires: \"1m\" }")
        lines += ["      }", "    }"]
        users.append("\n".join(lines))
    return "authorization {\n  users = [\n" + "\n".join(users) + "\n  ]\n}\n"


def password_env(identity: str) -> str:
    """The NATS server container's variable holding ``identity``'s password (Kubernetes)."""
    return f"NATS_{identity.upper()}_PASSWORD"


def helm_users() -> list[dict[str, Any]]:
    """``config.merge.authorization.users`` for the NATS Helm chart: every service identity,
    its password read from the server container's environment (``<< $VAR >>``)."""
    return [{"user": i, "password": f"<< ${password_env(i)} >>", "permissions": permissions(i)}
            for i in IDENTITIES]


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by its owner only, never briefly readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    path.chmod(0o600)  # the file may have existed with a wider mode
    return path


def write_config(path: Path, passwords: Mapping[str, str]) -> Path:
    """Write a nats-server config holding only the authorization block (0600)."""
    return write_private(path, render_authorization(passwords))
