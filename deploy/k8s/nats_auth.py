"""NATS authorization in Kubernetes: the Helm values' users, each workload's identity, provisioning.

The users block of ``nats/values.yaml`` is generated from :mod:`libs.common.bus.permissions`
(one table for local runs, tests and the cluster) between two marker comments:

    python -m deploy.k8s.nats_auth --write    # regenerate it after changing the table
    python -m deploy.k8s.nats_auth            # exit 1 if the file is stale

The checks: the values declare exactly those users, each password read from the Secret
``ipaas-nats-<identity>``; each service Deployment connects as its own identity with its own
Secret and never provisions (``IPAAS_NATS_PROVISION``); a Job runs the provisioning step
(``python -m deploy.provision``) as ``provisioner``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deploy.k8s.resources import Resource, command_line, containers, env_vars, ident, of_kind, service_of
from libs.common.bus.permissions import IDENTITIES, PROVISIONER, SERVICES, inbox_prefix, permissions

PASSWORD_VAR = "NATS_PASSWORD"  # noqa: S105 - the name of a variable, not a password
NATS_HOST, NATS_PORT = "nats", 4222
PROVISION_MODULE = "deploy.provision"
VALUES = Path(__file__).resolve().parent / "nats" / "values.yaml"
BEGIN = "# BEGIN users: generated from libs/common/bus/permissions.py by `python -m deploy.k8s.nats_auth --write`"
END = "# END users"
_TRUE = {"1", "true", "yes", "on"}


def secret_name(identity: str) -> str:
    return f"ipaas-nats-{identity}"


def password_env(identity: str) -> str:
    """The NATS server container's variable holding ``identity``'s password."""
    return f"NATS_{identity.upper()}_PASSWORD"


def helm_users() -> list[dict[str, Any]]:
    """``config.merge.authorization.users`` for the NATS Helm chart: every deployed identity,
    its password read from the server container's environment (``<< $VAR >>``)."""
    return [{"user": i, "password": f"<< ${password_env(i)} >>", "permissions": permissions(i)} for i in IDENTITIES]


def render_users(indent: str = "      ") -> str:
    """The generated block, markers included, as it stands in ``values.yaml``."""
    lines = [indent + BEGIN, indent + "users:"]
    for user in helm_users():
        perms = user["permissions"]
        lines += [
            f"{indent}  - user: {user['user']}",
            f"{indent}    password: {json.dumps(user['password'])}",
            f"{indent}    permissions:",
        ]
        for direction in ("publish", "subscribe"):
            lines.append(f"{indent}      {direction}:")
            lines += [
                f"{indent}        {key}: {json.dumps(perms[direction][key])}"
                for key in ("allow", "deny")
                if key in perms[direction]
            ]
        if "allow_responses" in perms:
            lines.append(f"{indent}      allow_responses: {json.dumps(perms['allow_responses'])}")
    return "\n".join([*lines, indent + END])


def _block_span(text: str) -> tuple[int, int, str] | None:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    line_start = text.rfind("\n", 0, start) + 1
    return line_start, end + len(END), text[line_start:start]


def check_values_file(text: str) -> list[str]:
    span = _block_span(text)
    if span is None:
        return ["nats values: the generated users block (its BEGIN/END markers) is missing"]
    start, end, indent = span
    if text[start:end] != render_users(indent):
        return ["nats values: the users block is stale: run python -m deploy.k8s.nats_auth --write"]
    return []


def write_values(path: Path = VALUES) -> bool:
    """Regenerate the users block in place; returns whether the file changed."""
    text = path.read_text(encoding="utf-8")
    span = _block_span(text)
    if span is None:
        raise ValueError(f"{path}: no generated users block (markers {BEGIN!r} ... {END!r})")
    start, end, indent = span
    new = text[:start] + render_users(indent) + text[end:]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def check_values(values: dict[str, Any]) -> list[str]:
    """The chart's users match the table, and every password comes from its identity's Secret."""
    problems: list[str] = []
    merge = (values.get("config") or {}).get("merge") or {}
    users = (merge.get("authorization") or {}).get("users")
    if users != helm_users():
        problems.append(
            "nats values: config.merge.authorization.users differ from libs/common/bus/permissions.py "
            "(python -m deploy.k8s.nats_auth --write)"
        )
    env = (values.get("container") or {}).get("env") or {}
    for identity in IDENTITIES:
        var = password_env(identity)
        ref = ((env.get(var) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if ref.get("name") != secret_name(identity) or ref.get("key") != "password":
            problems.append(
                f"nats values: container.env.{var} must come from Secret {secret_name(identity)} key password"
            )
    return problems


def check_identity(where: str, identity: str, container: dict[str, Any]) -> list[str]:
    env = env_vars(container)
    problems: list[str] = []
    ref = ((env.get(PASSWORD_VAR) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if ref.get("name") != secret_name(identity) or ref.get("key") != "password":
        problems.append(f"{where}: env {PASSWORD_VAR} must come from Secret {secret_name(identity)} key password")
    url = str((env.get("NATS_URL") or {}).get("value", ""))
    parts = urlsplit(url)
    if not url:
        problems.append(f"{where}: no NATS_URL of its own (nats://{identity}:$({PASSWORD_VAR})@nats:4222)")
    elif parts.username != identity or parts.password != f"$({PASSWORD_VAR})":
        problems.append(f"{where}: NATS_URL must connect as NATS user {identity} with $({PASSWORD_VAR})")
    elif parts.hostname != NATS_HOST or parts.port != NATS_PORT:
        problems.append(f"{where}: NATS_URL must point at Service {NATS_HOST}:{NATS_PORT}")
    prefix = env.get(f"IPAAS_{identity.upper()}_NATS_INBOX_PREFIX")
    if prefix is not None and prefix.get("value") != inbox_prefix(identity):
        problems.append(f"{where}: reply inboxes must use {inbox_prefix(identity)} (the only ones it may read)")
    if str((env.get("IPAAS_NATS_PROVISION") or {}).get("value", "")).lower() in _TRUE and identity != PROVISIONER:
        problems.append(f"{where}: IPAAS_NATS_PROVISION must stay false (its identity may not create streams)")
    return problems


def check_service_identities(resources: list[Resource]) -> list[str]:
    """Every Deployment running ``python -m services.<name>`` connects as NATS user ``<name>``, and a
    Job runs ``python -m deploy.provision`` as ``provisioner``."""
    problems: list[str] = []
    provisioners = 0
    for res, where, c in containers(resources):
        if res.get("kind") == "Job" and PROVISION_MODULE in command_line(c):
            provisioners += 1
            problems += check_identity(where, PROVISIONER, c)
            continue
        service = service_of(res, c)
        if service in SERVICES:
            problems += check_identity(where, service, c)
    if not provisioners:
        problems.append(f"Job: none runs python -m {PROVISION_MODULE} (the services may not create streams)")
    for res in of_kind(resources, "ConfigMap"):
        if str((res.get("data") or {}).get("IPAAS_NATS_PROVISION", "")).lower() in _TRUE:
            problems.append(
                f"{ident(res)}: IPAAS_NATS_PROVISION must stay false (service identities may not "
                "create streams; the migrate Job provisions them)"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the NATS users of nats/values.yaml from the table.")
    parser.add_argument("--write", action="store_true", help="rewrite the generated block in place")
    args = parser.parse_args(argv)
    if args.write:
        print("updated" if write_values() else "already up to date")
        return 0
    problems = check_values_file(VALUES.read_text(encoding="utf-8"))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
