"""Checks of the network policies: what the executor may reach, and who may reach NATS and Postgres.

A NetworkPolicy is read as Kubernetes applies it: the rules of every policy that
selects a pod add up, a rule without peers (``to``/``from``) means everyone, and
a rule without ports means every port.

- The executor's egress must allow DNS (kube-dns, 53 UDP and TCP), NATS (4222),
  Postgres (5432) and the collector (4318) by pod selector, and nothing else inside
  the cluster; every ``ipBlock`` must cut out the private ranges and the cloud
  metadata addresses below.  A rule open to everywhere, to every pod of a namespace
  or to every namespace, is refused.
- NATS's ingress: clients (4222) from the platform's pods only, routes (6222) from
  NATS servers only; no rule open to every source.
- Postgres's ingress: 5432 from the platform's pods (and its own instances) only; no
  rule open to every source.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from deploy.k8s.links import NATS_POD_LABELS, PLATFORM_PODS, _labels, _selects
from deploy.k8s.resources import Resource, ident, name_of, of_kind

# What the executor's ipBlocks must cut out: private, shared, loopback and link-local ranges, and
# the addresses cloud providers serve instance metadata or host services on.
NEVER_REACHED: list[Network] = [
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
        "169.254.169.254/32",
        "169.254.170.2/32",
        "100.100.100.200/32",
        "168.63.129.16/32",
        "fd00:ec2::254/128",
    )
]
KUBE_DNS = {"k8s-app": "kube-dns"}
Peer = dict[str, Any]
Rule = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _rules(resources: list[Resource], pod: dict[str, Any], direction: str) -> list[tuple[Resource, Rule]]:
    """Rules of ``direction`` ("egress"/"ingress") of every policy that selects ``pod`` and has that type."""
    found: list[tuple[Resource, Rule]] = []
    kind = direction.capitalize()
    for pol in of_kind(resources, "NetworkPolicy"):
        spec = pol.get("spec") or {}
        selector = (spec.get("podSelector") or {}).get("matchLabels") or {}
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
        if kind in types and (not selector or _selects(selector, pod)):
            found += [(pol, rule) for rule in spec.get(direction) or []]
    return found


def _peers(rule: Rule, key: str) -> list[Peer]:
    return list(rule.get(key) or [])


def _ports(rule: Rule) -> list[tuple[Any, str]]:
    return [(p.get("port"), p.get("protocol", "TCP")) for p in rule.get("ports") or []]


def _allows_port(rule: Rule, port: int, protocol: str = "TCP") -> bool:
    ports = _ports(rule)
    return not ports or any(proto == protocol and (p is None or p == port) for p, proto in ports)


def _peer_selects(peer: Peer, pod: dict[str, str], *, other_namespace: bool = False) -> bool:
    """Whether a pod-selecting peer picks ``pod`` (in this namespace, or in another one when asked)."""
    if "ipBlock" in peer or "podSelector" not in peer:
        return False
    if ("namespaceSelector" in peer) != other_namespace:
        return False
    return _selects((peer["podSelector"] or {}).get("matchLabels") or {}, pod)


def _narrow(selector: Any) -> bool:
    return isinstance(selector, dict) and bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def _too_wide(peer: Peer) -> str | None:
    """Why a pod/namespace peer opens more than named pods, or ``None``."""
    if "ipBlock" in peer or _narrow(peer.get("podSelector")):
        return None
    if "namespaceSelector" in peer:
        return "every pod of " + (
            "the selected namespaces" if _narrow(peer["namespaceSelector"]) else "every namespace"
        )
    return "every pod of its namespace"


def _block(peer: Peer) -> tuple[Network, list[Network]]:
    ip = peer.get("ipBlock") or {}
    return (
        ipaddress.ip_network(ip.get("cidr", "0.0.0.0/0"), strict=False),
        [ipaddress.ip_network(e, strict=False) for e in ip.get("except") or []],
    )


def _leaks(cidr: Network, excepts: list[Network]) -> list[str]:
    """Ranges of NEVER_REACHED that ``cidr`` minus ``excepts`` still reaches."""
    return [str(net) for net in NEVER_REACHED if _overlap(net, cidr) and not any(_inside(net, e) for e in excepts)]


def _inside(a: Network, b: Network) -> bool:
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]  # same version, checked first


def _overlap(a: Network, b: Network) -> bool:
    return a.version == b.version and a.overlaps(b)


def check_executor_egress(resources: list[Resource]) -> list[str]:
    deployments = {name_of(d): d for d in of_kind(resources, "Deployment")}
    if "executor" not in deployments:
        return []
    pod = _labels(deployments["executor"])
    rules = _rules(resources, pod, "egress")
    if not rules:
        return ["NetworkPolicy: none restricts the executor's egress (it calls user-given URLs)"]
    problems: list[str] = []
    for pol, rule in rules:
        peers = _peers(rule, "to")
        if not peers:
            problems.append(f"{ident(pol)}: an egress rule without 'to' lets the executor reach everything")
        for peer in peers:
            if (why := _too_wide(peer)) is not None:
                problems.append(f"{ident(pol)}: an egress rule lets the executor reach {why}")
            if "ipBlock" in peer:
                cidr, excepts = _block(peer)
                problems += [
                    f"{ident(pol)}: ipBlock {cidr} lets the executor reach {leak}" for leak in _leaks(cidr, excepts)
                ]
    collector = deployments.get("otel-collector")
    clusters = [{"cnpg.io/cluster": name_of(c)} for c in of_kind(resources, "Cluster")]
    needs: list[tuple[str, dict[str, str], bool, int, tuple[str, ...]]] = [
        ("DNS (kube-dns)", KUBE_DNS, True, 53, ("UDP", "TCP")),
        ("NATS", NATS_POD_LABELS, False, 4222, ("TCP",)),
        *((f"Postgres ({c['cnpg.io/cluster']})", c, False, 5432, ("TCP",)) for c in clusters),
        *([("the OpenTelemetry collector", _labels(collector), False, 4318, ("TCP",))] if collector else []),
    ]
    for what, target, elsewhere, port, protocols in needs:
        for protocol in protocols:
            if not any(
                _allows_port(rule, port, protocol)
                and any(_peer_selects(p, target, other_namespace=elsewhere) for p in _peers(rule, "to"))
                for _, rule in rules
            ):
                problems.append(
                    f"NetworkPolicy: the executor cannot reach {what} on {port}/{protocol} (allow it by pod selector)"
                )
    return problems


def _check_ingress(
    resources: list[Resource], what: str, pod: dict[str, str], port: int, allowed: list[dict[str, str]]
) -> list[str]:
    """``pod`` has ingress rules, none open to every source, and ``port`` only from pods matching ``allowed``."""
    rules = _rules(resources, pod, "ingress")
    if not rules:
        return [f"NetworkPolicy: none restricts who reaches {what}"]
    problems: list[str] = []
    for pol, rule in rules:
        peers = _peers(rule, "from")
        if not peers:
            problems.append(f"{ident(pol)}: an ingress rule without 'from' opens {what} to every source")
            continue
        if not _allows_port(rule, port):
            continue
        for peer in peers:
            selector = ((peer.get("podSelector") or {}).get("matchLabels") or {}) if "podSelector" in peer else None
            if (
                "namespaceSelector" in peer
                or selector is None
                or not any(_selects(selector, labels) for labels in allowed)
            ):
                problems.append(
                    f"{ident(pol)}: port {port} of {what} is open to {peer}, not only to pods labelled {allowed}"
                )
    if not any(
        _allows_port(rule, port) and any(_peer_selects(p, allowed[0]) for p in _peers(rule, "from"))
        for _, rule in rules
    ):
        problems.append(f"NetworkPolicy: the platform's pods cannot reach {what} on {port}")
    return problems


def check_nats_ingress(resources: list[Resource]) -> list[str]:
    problems = _check_ingress(resources, "NATS", NATS_POD_LABELS, 4222, [PLATFORM_PODS])
    for pol, rule in _rules(resources, NATS_POD_LABELS, "ingress"):
        if _allows_port(rule, 6222) and any(not _peer_selects(p, NATS_POD_LABELS) for p in _peers(rule, "from")):
            problems.append(f"{ident(pol)}: NATS routes (6222) must be open to NATS servers only")
    return problems


def check_postgres_ingress(resources: list[Resource]) -> list[str]:
    problems: list[str] = []
    for cluster in of_kind(resources, "Cluster"):
        instances = {"cnpg.io/cluster": name_of(cluster)}
        problems += _check_ingress(
            resources, f"Postgres ({name_of(cluster)})", instances, 5432, [PLATFORM_PODS, instances]
        )
    return problems


def check_network(resources: list[Resource]) -> list[str]:
    return check_executor_egress(resources) + check_nats_ingress(resources) + check_postgres_ingress(resources)
