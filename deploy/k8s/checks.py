"""Structural checks of single manifests: identity, containers, probes, resources, drain.

Each check returns human-readable problems (``Kind/name: what is wrong``); an
empty list means the manifest passed.
"""

from __future__ import annotations

import re
from typing import Any

from deploy.k8s.resources import CLUSTER_SCOPED, Resource, command_line, ident, pod_spec, ports_of

API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "Job": "batch/v1",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "ScaledObject": "keda.sh/v1alpha1",
    "Cluster": "postgresql.cnpg.io/v1",
    "Certificate": "cert-manager.io/v1",
    "Issuer": "cert-manager.io/v1",
}
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ENV_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEM_UNITS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def cpu_millis(value: Any) -> float | None:
    m = _CPU.match(str(value))
    if m is None:
        return None
    return float(m.group(1)) * (1 if m.group(2) else 1000)


def memory_bytes(value: Any) -> float | None:
    m = _MEM.match(str(value))
    if m is None:
        return None
    return float(m.group(1)) * _MEM_UNITS[m.group(2)]


def check_identity(resources: list[Resource], *, require_namespace: bool) -> list[str]:
    problems: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for res in resources:
        kind, meta = res.get("kind"), res.get("metadata") or {}
        name = meta.get("name")
        if not kind or not res.get("apiVersion") or not name:
            problems.append(f"{ident(res)}: apiVersion, kind and metadata.name are required")
            continue
        expected = API_VERSIONS.get(kind)
        if expected is None:
            problems.append(f"{ident(res)}: unknown kind {kind}")
        elif res["apiVersion"] != expected:
            problems.append(f"{ident(res)}: apiVersion {res['apiVersion']} (expected {expected})")
        if not DNS_1123.match(name) or len(name) > (63 if kind == "Service" else 253):
            problems.append(f"{ident(res)}: name is not a valid DNS-1123 name")
        namespace = meta.get("namespace", "")
        if require_namespace and kind not in CLUSTER_SCOPED and not namespace:
            problems.append(f"{ident(res)}: no namespace")
        key = (kind, namespace, name)
        if key in seen:
            problems.append(f"{ident(res)}: defined twice")
        seen.add(key)
    return problems


def _port_ok(port: Any, names: set[str], numbers: set[int]) -> bool:
    return port in names if isinstance(port, str) else int(port) in numbers


def check_image(where: str, image: str, *, pinned: bool) -> list[str]:
    if not image:
        return [f"{where}: no image"]
    if not pinned:
        return []
    last = image.split("/")[-1]
    if "@sha256:" not in image and ":" not in last:
        return [f"{where}: image {image} has no tag"]
    if last.endswith(":latest"):
        return [f"{where}: image {image} uses the mutable tag 'latest'"]
    if "/" not in image:
        return [f"{where}: image {image} is not a registry reference (did the overlay set images:?)"]
    return []


def check_resources(where: str, container: dict[str, Any]) -> list[str]:
    res = container.get("resources") or {}
    problems = [
        f"{where}: resources.{part}.{key} is not set"
        for part in ("requests", "limits")
        for key in ("cpu", "memory")
        if key not in (res.get(part) or {})
    ]
    if problems:
        return problems
    for key, parse in (("cpu", cpu_millis), ("memory", memory_bytes)):
        req, lim = parse(res["requests"][key]), parse(res["limits"][key])
        if req is None or lim is None:
            problems.append(f"{where}: resources.{key} is not a valid quantity")
        elif req > lim:
            problems.append(f"{where}: resources.requests.{key} exceeds the limit")
    return problems


def _prestop_seconds(container: dict[str, Any]) -> int | None:
    pre = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre:
        return int(pre["sleep"].get("seconds", 0))
    command = (pre.get("exec") or {}).get("command") or []
    if len(command) == 2 and command[0] == "sleep" and str(command[1]).isdigit():
        return int(command[1])
    return None


def check_probes(where: str, container: dict[str, Any], *, ipaas_service: bool) -> list[str]:
    problems: list[str] = []
    names, numbers = ports_of([container])
    expected = {"livenessProbe": "/health/live", "readinessProbe": "/health/ready"}
    for probe_name, path in expected.items():
        probe = container.get(probe_name)
        if not probe:
            problems.append(f"{where}: no {probe_name}")
            continue
        http = probe.get("httpGet")
        if http is None:
            continue
        if not _port_ok(http.get("port"), names, numbers):
            problems.append(f"{where}: {probe_name} port {http.get('port')} is not a container port")
        if ipaas_service and http.get("path") != path:
            problems.append(f"{where}: {probe_name} must GET {path}")
    return problems


def check_env(where: str, container: dict[str, Any]) -> list[str]:
    """``$(VAR)`` references must name a variable defined earlier in the list."""
    problems: list[str] = []
    defined: set[str] = set()
    for var in container.get("env") or []:
        problems.extend(
            f"{where}: env {var['name']} refers to $({ref}) before it is defined"
            for ref in ENV_REF.findall(str(var.get("value", "")))
            if ref not in defined
        )
        defined.add(var["name"])
    return problems


def check_http_port(where: str, container: dict[str, Any], res: Resource) -> list[str]:
    """The ports a service listens on (IPAAS_HTTP_PORT, IPAAS_HTTP_METRICS_PORT) must be container ports,
    and the scrape annotation must name the metrics port (the service port serves no /metrics)."""
    _, numbers = ports_of([container])
    env = {var.get("name"): var.get("value") for var in container.get("env") or []}
    problems = [
        f"{where}: {name} {env[name]} is not a container port"
        for name in ("IPAAS_HTTP_PORT", "IPAAS_HTTP_METRICS_PORT")
        if name in env and int(env[name] or 0) not in numbers
    ]
    annotations = (res["spec"]["template"].get("metadata") or {}).get("annotations") or {}
    scrape = annotations.get("prometheus.io/port")
    if scrape is not None and int(scrape) not in numbers:
        problems.append(f"{where}: prometheus.io/port {scrape} is not a container port")
    elif scrape is not None and "IPAAS_HTTP_PORT" in env and str(scrape) != str(env.get("IPAAS_HTTP_METRICS_PORT")):
        problems.append(
            f"{where}: prometheus.io/port {scrape} is not IPAAS_HTTP_METRICS_PORT "
            f"({env.get('IPAAS_HTTP_METRICS_PORT', 'unset')}); /metrics is served only there"
        )
    return problems


def check_workload(res: Resource, *, pinned_images: bool) -> list[str]:
    spec = pod_spec(res)
    if spec is None:
        return []
    problems: list[str] = []
    kind = res["kind"]
    containers = spec.get("containers") or []
    if not containers:
        return [f"{ident(res)}: no containers"]
    if kind == "Deployment":
        selector = (res["spec"].get("selector") or {}).get("matchLabels") or {}
        labels = (res["spec"]["template"].get("metadata") or {}).get("labels") or {}
        if not selector:
            problems.append(f"{ident(res)}: empty selector")
        elif any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{ident(res)}: selector {selector} does not match the template labels")
        if int(res["spec"].get("replicas", 1)) < 1:
            problems.append(f"{ident(res)}: replicas < 1")
    if kind == "Job" and spec.get("restartPolicy") not in ("Never", "OnFailure"):
        problems.append(f"{ident(res)}: a Job's restartPolicy must be Never or OnFailure")
    grace = int(spec.get("terminationGracePeriodSeconds", 30))
    for c in containers:
        where = f"{ident(res)} container {c.get('name')}"
        problems += check_image(where, str(c.get("image", "")), pinned=pinned_images)
        problems += check_resources(where, c)
        problems += check_env(where, c)
        if kind != "Deployment":
            continue
        problems += check_http_port(where, c, res)
        problems += check_probes(where, c, ipaas_service="services." in command_line(c))
        pre = _prestop_seconds(c)
        if pre is None:
            problems.append(f"{where}: no preStop sleep (endpoints need time to drop the pod)")
        elif grace <= pre + 10:
            problems.append(
                f"{where}: terminationGracePeriodSeconds {grace} leaves under 10s to drain after the {pre}s preStop"
            )
    return problems
