"""Checks of NATS authorization in Kubernetes: the Helm values' users and each service's identity.

The NATS Helm values must declare exactly the users and permissions of
:mod:`deploy.local.nats_authz` (one source of truth for local runs, tests and the
cluster), each password read from the Secret ``ipaas-nats-<identity>``; each service
Deployment must connect as its own identity with the password of its own Secret.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from deploy.k8s.checks import ident
from deploy.k8s.render import Resource, pod_spec
from deploy.local.nats_authz import IDENTITIES, helm_users, inbox_prefix, password_env

PASSWORD_VAR = "NATS_PASSWORD"  # noqa: S105 - the name of a variable, not a password
NATS_HOST, NATS_PORT = "nats", 4222
_SERVICE = re.compile(r"\bservices\.([a-z_]+)\b")


def secret_name(identity: str) -> str:
    return f"ipaas-nats-{identity}"


def check_values(values: dict[str, Any]) -> list[str]:
    """The chart's users match nats_authz, and every password comes from its identity's Secret."""
    problems: list[str] = []
    merge = (values.get("config") or {}).get("merge") or {}
    users = (merge.get("authorization") or {}).get("users")
    if users != helm_users():
        problems.append("nats values: config.merge.authorization.users differ from deploy/local/nats_authz.py "
                        "(render them with nats_authz.helm_users())")
    env = (values.get("container") or {}).get("env") or {}
    for identity in IDENTITIES:
        var = password_env(identity)
        ref = ((env.get(var) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if ref.get("name") != secret_name(identity) or ref.get("key") != "password":
            problems.append(f"nats values: container.env.{var} must come from Secret "
                            f"{secret_name(identity)} key password")
    return problems


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(v.get("name")): v for v in container.get("env") or []}


def check_identity(where: str, identity: str, container: dict[str, Any]) -> list[str]:
    env = _env(container)
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
    return problems


def check_service_identities(resources: list[Resource]) -> list[str]:
    """Every Deployment running ``python -m services.<name>`` connects as NATS user ``<name>``."""
    problems: list[str] = []
    for res in resources:
        spec = pod_spec(res)
        if spec is None or res.get("kind") != "Deployment":
            continue
        for c in spec.get("containers") or []:
            match = _SERVICE.search(" ".join(str(x) for x in c.get("command") or []))
            if match is None or match.group(1) not in IDENTITIES:
                continue
            problems += check_identity(f"{ident(res)} container {c.get('name')}", match.group(1), c)
    return problems
