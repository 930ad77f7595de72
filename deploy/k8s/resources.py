"""Rendered Kubernetes objects as plain data, and where a workload keeps its pod spec.

Every check reads the manifests as kustomize renders them (:mod:`deploy.k8s.kustomize`): a list of
mappings, one per object, exactly as ``kubectl apply -k`` would send them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

Resource = dict[str, Any]
SERVICE_MODULE = re.compile(r"\bservices\.([a-z_]+)\b")

# Kinds that have no namespace.
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "StorageClass",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def pod_spec(res: Resource) -> dict[str, Any] | None:
    """The pod template's spec of a workload; None for anything else."""
    if res.get("kind") not in POD_TEMPLATE_KINDS:
        return None
    spec: dict[str, Any] | None = res.get("spec", {}).get("template", {}).get("spec")
    return spec


def ident(res: Resource) -> str:
    return f"{res.get('kind', '?')}/{(res.get('metadata') or {}).get('name', '?')}"


def of_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r.get("kind") == kind]


def name_of(res: Resource) -> str:
    return str(res.get("metadata", {}).get("name"))


def containers(resources: list[Resource]) -> Iterator[tuple[Resource, str, dict[str, Any]]]:
    """Every container of every workload: its resource, how messages name it, the container."""
    for res in resources:
        for c in (pod_spec(res) or {}).get("containers") or []:
            yield res, f"{ident(res)} container {c.get('name')}", c


def ports_of(containers: Iterable[dict[str, Any]]) -> tuple[set[str], set[int]]:
    """The port names and numbers these containers declare."""
    ports = [p for c in containers for p in c.get("ports") or []]
    return {p["name"] for p in ports if "name" in p}, {int(p["containerPort"]) for p in ports if "containerPort" in p}


def command_line(container: dict[str, Any]) -> str:
    return " ".join(str(x) for x in container.get("command") or [])


def service_of(res: Resource, container: dict[str, Any]) -> str | None:
    """``<name>`` for a Deployment's container running ``python -m services.<name>``; None for any other."""
    match = SERVICE_MODULE.search(command_line(container))
    return match.group(1) if res.get("kind") == "Deployment" and match is not None else None


def container_env(container: dict[str, Any], resources: list[Resource]) -> dict[str, str]:
    """Plain values a container sees: its ConfigMaps (``envFrom``), then its own ``env``."""
    configmaps = {name_of(c): c.get("data") or {} for c in of_kind(resources, "ConfigMap")}
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        ref = str((src.get("configMapRef") or {}).get("name", ""))
        env.update({k: str(v) for k, v in (configmaps.get(ref) or {}).items()})
    env.update({v["name"]: str(v["value"]) for v in container.get("env") or [] if "value" in v})
    return env


def env_vars(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's own ``env`` entries by name."""
    return {str(v.get("name")): v for v in container.get("env") or []}
