"""The nats-server ``authorization`` block for the service identities.

Each service connects as its own user and gets its own reply-inbox prefix
(``_INBOX_<identity>``), which only it may subscribe to.  The credential
subject ``svc.auth.>`` is reachable only by the executor (publish) and auth
(subscribe); auth answers through ``allow_responses`` and may publish nothing
else.  Services connect with ``Bus.connect(..., inbox_prefix=inbox_prefix(name))``
and the user and password (in ``NATS_URL`` as ``nats://user:password@host:port``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

IDENTITIES = ("auth", "gateway", "executor", "scheduler")

# JetStream's API, acks and flow control: what a JetStream client publishes besides its subjects.
_JS_CLIENT = ["$JS.API.>", "$JS.ACK.>", "$JS.FC.>"]

PUBLISH: dict[str, list[str]] = {
    "auth": [],
    "gateway": ["events.>", "workflows.changed.>", "svc.executor.dry_run", *_JS_CLIENT],
    "executor": ["svc.auth.>", "dlq.>", *_JS_CLIENT],
    "scheduler": ["events.>", *_JS_CLIENT],
}
SUBSCRIBE: dict[str, list[str]] = {
    "auth": ["svc.auth.>"],
    "gateway": ["workflows.changed.>"],  # webhook cache invalidation
    "executor": ["svc.executor.dry_run"],  # dry-run requests from the gateway
    "scheduler": [],
}
PRIVATE = "svc.auth.>"
# Identities that answer requests: they may publish to the requester's reply subject.
RESPONDERS = ("auth", "executor")


def inbox_prefix(identity: str) -> str:
    return f"_INBOX_{identity}"


def _quote(value: str) -> str:
    # nats-server's config accepts JSON-style double-quoted strings.
    return json.dumps(value)


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


def render_authorization(passwords: Mapping[str, str]) -> str:
    """An ``authorization { users = [...] }`` block for every identity in ``passwords``.

    ``passwords`` maps identity (auth, gateway, executor, scheduler) to its password.
    """
    unknown = set(passwords) - set(IDENTITIES)
    if unknown:
        raise ValueError(f"unknown NATS identities: {sorted(unknown)}")
    users: list[str] = []
    for identity in IDENTITIES:
        if identity not in passwords:
            continue
        password = passwords[identity]
        if not password:
            raise ValueError(f"empty NATS password for {identity}")
        inbox = f"{inbox_prefix(identity)}.>"
        publish = [*PUBLISH[identity], inbox]
        subscribe = [*SUBSCRIBE[identity], inbox]
        deny_publish = [] if identity == "executor" else [PRIVATE]
        deny_subscribe = [] if identity == "auth" else [PRIVATE]
        lines = [
            "    {",
            f"      user = {_quote(identity)}",
            f"      password = {_quote(password)}",
            "      permissions = {",
            f"        publish = {{ allow = {_list(publish)}"
            + (f", deny = {_list(deny_publish)}" if deny_publish else "") + " }",
            f"        subscribe = {{ allow = {_list(subscribe)}"
            + (f", deny = {_list(deny_subscribe)}" if deny_subscribe else "") + " }",
        ]
        if identity in RESPONDERS:
            lines.append("        allow_responses = { max: 1, expires: \"1m\" }")
        lines += ["      }", "    }"]
        users.append("\n".join(lines))
    return "authorization {\n  users = [\n" + "\n".join(users) + "\n  ]\n}\n"


def write_config(path: Path, passwords: Mapping[str, str]) -> Path:
    """Write a nats-server config holding only the authorization block (0600)."""
    path.write_text(render_authorization(passwords), encoding="utf-8")
    path.chmod(0o600)
    return path
