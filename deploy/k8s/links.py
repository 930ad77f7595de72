"""Checks across manifests: selectors find pods, ports line up, references resolve,
and every piece the platform needs is declared."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from deploy.k8s.pg_auth import MIGRATE_MODULE
from deploy.k8s.resources import Resource, command_line, container_env, ident, name_of, of_kind, pod_spec, ports_of
from libs.common.settings import NatsSettings
from services.executor.settings import ExecutorSettings

# Deployments the platform needs, with their minimum replica count.
REQUIRED_DEPLOYMENTS = {"gateway": 1, "auth": 1, "scheduler": 2, "executor": 1, "otel-collector": 1}
# Services that come from outside the kustomization (the NATS Helm chart).
EXTERNAL_SERVICES = {"nats": {4222, 8222}}
# Pods from outside the kustomization that policies may select: the NATS chart's servers (release
# "nats"); CloudNativePG's instances carry cnpg.io/cluster=<Cluster name>.
NATS_POD_LABELS = {
    "app.kubernetes.io/name": "nats",
    "app.kubernetes.io/instance": "nats",
    "app.kubernetes.io/component": "nats",
}
# Every pod of the platform (services, collector, migrate Job) carries this label.
PLATFORM_PODS = {"app.kubernetes.io/part-of": "ipaas"}


def _labels(dep: Resource) -> dict[str, Any]:
    return dict((dep["spec"]["template"].get("metadata") or {}).get("labels") or {})


def _selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_services(resources: list[Resource]) -> list[str]:
    problems: list[str] = []
    deployments = of_kind(resources, "Deployment")
    for svc in of_kind(resources, "Service"):
        selector = svc.get("spec", {}).get("selector") or {}
        targets = [d for d in deployments if _selects(selector, _labels(d))]
        if not targets:
            problems.append(f"{ident(svc)}: selector {selector} matches no Deployment's pods")
            continue
        names, numbers = ports_of(c for d in targets for c in (pod_spec(d) or {}).get("containers", []))
        for port in svc["spec"].get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if isinstance(target, str) and target not in names or isinstance(target, int) and target not in numbers:
                problems.append(f"{ident(svc)}: targetPort {target} is not a port of {name_of(targets[0])}")
    return problems


def check_budgets(resources: list[Resource]) -> list[str]:
    problems: list[str] = []
    deployments = of_kind(resources, "Deployment")
    covered: set[str] = set()
    for pdb in of_kind(resources, "PodDisruptionBudget"):
        spec = pdb.get("spec", {})
        if ("minAvailable" in spec) == ("maxUnavailable" in spec):
            problems.append(f"{ident(pdb)}: set exactly one of minAvailable and maxUnavailable")
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        targets = [d for d in deployments if _selects(selector, _labels(d))]
        if not targets:
            problems.append(f"{ident(pdb)}: selector matches no Deployment")
        for d in targets:
            covered.add(name_of(d))
            min_available = spec.get("minAvailable")
            if isinstance(min_available, int) and min_available >= int(d["spec"].get("replicas", 1)):
                problems.append(
                    f"{ident(pdb)}: minAvailable {min_available} blocks every eviction of "
                    f"{name_of(d)} ({d['spec'].get('replicas', 1)} replicas)"
                )
    problems.extend(
        f"Deployment/{name}: no PodDisruptionBudget"
        for name in ("gateway", "auth", "scheduler", "executor")
        if name not in covered
    )
    return problems


def _main_container(dep: Resource) -> dict[str, Any]:
    containers = (pod_spec(dep) or {}).get("containers") or [{}]
    return next((c for c in containers if c.get("name") == name_of(dep)), containers[0])


def executor_consumer(resources: list[Resource]) -> tuple[str, str]:
    """The stream and durable consumer the executor Deployment reads, as its settings will resolve them."""
    executor = next((d for d in of_kind(resources, "Deployment") if name_of(d) == "executor"), None)
    env = container_env(_main_container(executor), resources) if executor is not None else {}
    stream = env.get("IPAAS_NATS_EVENTS_STREAM", NatsSettings.model_fields["events_stream"].default)
    consumer = env.get("IPAAS_EXECUTOR_CONSUMER", ExecutorSettings.model_fields["consumer"].default)
    return str(stream), str(consumer)


def _autoscaled(resources: list[Resource], deployment: str) -> list[Resource]:
    return [
        a
        for a in of_kind(resources, "HorizontalPodAutoscaler") + of_kind(resources, "ScaledObject")
        if (a.get("spec", {}).get("scaleTargetRef") or {}).get("name") == deployment
    ]


def check_scaling(resources: list[Resource]) -> list[str]:
    problems: list[str] = []
    deployments = {name_of(d) for d in of_kind(resources, "Deployment")}
    scaled = of_kind(resources, "ScaledObject")
    stream, consumer = executor_consumer(resources)
    lag_triggers = 0
    for so in scaled:
        spec = so.get("spec", {})
        target = (spec.get("scaleTargetRef") or {}).get("name")
        if target not in deployments:
            problems.append(f"{ident(so)}: scaleTargetRef {target} is not a Deployment")
        if int(spec.get("minReplicaCount", 0)) > int(spec.get("maxReplicaCount", 100)):
            problems.append(f"{ident(so)}: minReplicaCount exceeds maxReplicaCount")
        for trig in spec.get("triggers") or []:
            meta = trig.get("metadata") or {}
            if trig.get("type") != "nats-jetstream":
                continue
            missing = [
                k for k in ("natsServerMonitoringEndpoint", "stream", "consumer", "lagThreshold") if not meta.get(k)
            ]
            if missing:
                problems.append(f"{ident(so)}: nats-jetstream trigger lacks {missing}")
            if target != "executor":
                continue
            if (meta.get("stream"), meta.get("consumer")) == (stream, consumer):
                lag_triggers += 1
            else:
                problems.append(
                    f"{ident(so)}: the trigger reads consumer {meta.get('consumer')!r} of stream "
                    f"{meta.get('stream')!r}, the executors consume {consumer!r} of {stream!r}"
                )
    if not lag_triggers:
        problems.append(
            f"ScaledObject: the executor must scale on the lag of consumer {consumer!r} of stream "
            f"{stream} (its IPAAS_EXECUTOR_CONSUMER and IPAAS_NATS_EVENTS_STREAM)"
        )
    return problems + check_gateway_replicas(resources)


def check_gateway_replicas(resources: list[Resource]) -> list[str]:
    """Each gateway enforces 1/IPAAS_GATEWAY_REPLICAS of a tenant's webhook limit: the count must be the real one."""
    gateway = next((d for d in of_kind(resources, "Deployment") if name_of(d) == "gateway"), None)
    if gateway is None:
        return []
    problems = [
        f"{ident(a)}: scales the gateway, whose replica count must stay fixed (IPAAS_GATEWAY_REPLICAS "
        "divides each tenant's webhook limit)"
        for a in _autoscaled(resources, "gateway")
    ]
    replicas = int(gateway["spec"].get("replicas", 1))
    declared = container_env(_main_container(gateway), resources).get("IPAAS_GATEWAY_REPLICAS", "1")
    if declared != str(replicas):
        problems.append(
            f"{ident(gateway)}: {replicas} replicas but IPAAS_GATEWAY_REPLICAS={declared}: together they "
            f"would accept {replicas}/{declared} of each tenant's webhook limit"
        )
    return problems


def external_pods(resources: list[Resource]) -> list[dict[str, Any]]:
    """Labels of pods that the rendered set does not template but does run: NATS servers, CNPG instances."""
    return [NATS_POD_LABELS, *({"cnpg.io/cluster": name_of(c)} for c in of_kind(resources, "Cluster"))]


def check_policies(resources: list[Resource]) -> list[str]:
    problems: list[str] = []
    pods = [_labels(d) for d in of_kind(resources, "Deployment")] + external_pods(resources)
    for pol in of_kind(resources, "NetworkPolicy"):
        selector = (pol.get("spec", {}).get("podSelector") or {}).get("matchLabels") or {}
        if selector and not any(_selects(selector, labels) for labels in pods):
            problems.append(f"{ident(pol)}: podSelector {selector} matches no pods")
    if not of_kind(resources, "NetworkPolicy"):
        problems.append("NetworkPolicy: none declared")
    return problems


def check_references(resources: list[Resource]) -> tuple[list[str], set[str]]:
    """ConfigMaps must exist; Secrets may be external (returned so they can be listed)."""
    problems: list[str] = []
    configmaps = {name_of(c) for c in of_kind(resources, "ConfigMap")}
    clusters = {name_of(c) for c in of_kind(resources, "Cluster")}
    secrets: set[str] = set()
    for res in resources:
        spec = pod_spec(res)
        if spec is None:
            continue
        refs: list[tuple[str, str]] = []
        for vol in spec.get("volumes") or []:
            if "configMap" in vol:
                refs.append(("ConfigMap", vol["configMap"]["name"]))
            if "secret" in vol:
                refs.append(("Secret", vol["secret"]["secretName"]))
        for c in spec.get("containers") or []:
            for src in c.get("envFrom") or []:
                refs += [("ConfigMap", src["configMapRef"]["name"])] if "configMapRef" in src else []
                refs += [("Secret", src["secretRef"]["name"])] if "secretRef" in src else []
            for var in c.get("env") or []:
                ref = var.get("valueFrom") or {}
                refs += [("ConfigMap", ref["configMapKeyRef"]["name"])] if "configMapKeyRef" in ref else []
                refs += [("Secret", ref["secretKeyRef"]["name"])] if "secretKeyRef" in ref else []
        for kind, name in refs:
            if kind == "ConfigMap" and name not in configmaps:
                problems.append(f"{ident(res)}: ConfigMap {name} is not declared")
            if kind == "Secret":
                secrets.add(name)
                if name.endswith("-app") and name.removesuffix("-app") not in clusters:
                    problems.append(
                        f"{ident(res)}: Secret {name} would come from a CNPG Cluster "
                        f"{name.removesuffix('-app')}, which is not declared"
                    )
    return problems, secrets


def check_urls(resources: list[Resource]) -> list[str]:
    """URLs in ConfigMaps that name an in-cluster Service must hit one of its ports."""
    problems: list[str] = []
    ports = {name_of(s): {int(p["port"]) for p in s["spec"].get("ports") or []} for s in of_kind(resources, "Service")}
    ports |= EXTERNAL_SERVICES
    for cm in of_kind(resources, "ConfigMap"):
        for key, value in (cm.get("data") or {}).items():
            if not (key.endswith(("_URL", "_ENDPOINT")) and "://" in str(value)):
                continue
            parts = urlsplit(str(value))
            host = (parts.hostname or "").split(".")[0]
            if "." in (parts.hostname or "") or host in ("127", "localhost"):
                continue
            if host not in ports:
                problems.append(f"{ident(cm)}: {key} names Service {host}, which is not declared")
            elif parts.port is not None and parts.port not in ports[host]:
                problems.append(
                    f"{ident(cm)}: {key} uses port {parts.port}, Service {host} serves {sorted(ports[host])}"
                )
    return problems


def check_required(resources: list[Resource]) -> list[str]:
    problems: list[str] = []
    deployments = {name_of(d): d for d in of_kind(resources, "Deployment")}
    for name, minimum in REQUIRED_DEPLOYMENTS.items():
        dep = deployments.get(name)
        if dep is None:
            problems.append(f"Deployment/{name}: missing")
        elif int(dep["spec"].get("replicas", 1)) < minimum:
            problems.append(f"Deployment/{name}: needs at least {minimum} replicas")
    services = {name_of(s) for s in of_kind(resources, "Service")}
    problems.extend(f"Service/{name}: missing" for name in ("gateway", "auth") if name not in services)
    jobs = [command_line(c) for j in of_kind(resources, "Job") for c in (pod_spec(j) or {}).get("containers") or []]
    if not any(MIGRATE_MODULE in cmd for cmd in jobs):
        problems.append(f"Job: none runs python -m {MIGRATE_MODULE}")
    if not of_kind(resources, "Cluster"):
        problems.append("Cluster: no CloudNativePG cluster declared")
    return problems
