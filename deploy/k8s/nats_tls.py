"""NATS over TLS in an overlay: the chart's values, the certificate and every client agree.

An overlay's ``nats-values.yaml`` is layered over ``../../nats/values.yaml`` as Helm
does (``-f base -f overlay``: maps merge, anything else is replaced).  When it turns
on ``config.nats.tls`` (it must in the overlays of ``TLS_REQUIRED``):

- the Secret it names is issued by a cert-manager ``Certificate`` of the overlay whose
  ``dnsNames`` hold the host every client connects to and, with a cluster, the route
  names ``*.<headless service>``; routes use TLS too;
- every container with a ``NATS_URL`` connects with ``tls://`` and has
  ``IPAAS_NATS_TLS_CA_FILE`` (its env or a ConfigMap it loads) pointing at ``ca.crt``
  of that Secret, mounted on its own (never the server's private key).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from deploy.k8s.resources import Resource, container_env, containers, ident, of_kind, pod_spec

TLS_REQUIRED = {"prod"}
VALUES_FILE = "nats-values.yaml"
CA_KEY = "ca.crt"
HEADLESS = "nats-headless"


def helm_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = helm_merge(base[key], value) if key in base else value
        return out
    return override


def overlay_values(base: dict[str, Any], overlay: Path) -> dict[str, Any]:
    """The chart values an overlay installs NATS with: the base's, plus its ``nats-values.yaml`` if any."""
    path = overlay / VALUES_FILE
    if not path.is_file():
        return base
    extra = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    merged: dict[str, Any] = helm_merge(base, extra)
    return merged


def _get(values: dict[str, Any], *keys: str) -> Any:
    node: Any = values
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _ca_problems(where: str, ca_file: str, container: dict[str, Any], spec: dict[str, Any], secret: str) -> list[str]:
    directory, filename = posixpath.split(ca_file)
    mount = next((m for m in container.get("volumeMounts") or [] if m.get("mountPath") == directory), None)
    volume = next((v for v in spec.get("volumes") or [] if mount and v.get("name") == mount.get("name")), None)
    source = (volume or {}).get("secret") or {}
    if source.get("secretName") != secret:
        return [f"{where}: IPAAS_NATS_TLS_CA_FILE {ca_file} is not mounted from Secret {secret}"]
    items = source.get("items")
    if not items:
        return [f"{where}: mounts all of Secret {secret}, the server's private key included; project {CA_KEY} only"]
    if not any(i.get("key") == CA_KEY and i.get("path") == filename for i in items) or len(items) > 1:
        return [f"{where}: Secret {secret} must be projected as {CA_KEY} -> {filename}, nothing else"]
    return []


def check_nats_tls(resources: list[Resource], values: dict[str, Any], *, required: bool) -> list[str]:
    tls = _get(values, "config", "nats", "tls") or {}
    if not tls.get("enabled"):
        return (
            ["nats values: config.nats.tls must be enabled in this overlay (clients in the clear)"] if required else []
        )
    secret = str(tls.get("secretName") or "")
    if not secret:
        return ["nats values: config.nats.tls.secretName must name the servers' certificate Secret"]
    problems: list[str] = []
    clustered = bool(_get(values, "config", "cluster", "enabled"))
    if clustered and not _get(values, "config", "cluster", "tls", "enabled"):
        problems.append("nats values: config.cluster.tls must be enabled too (routes in the clear)")
    if clustered and (_get(values, "config", "cluster", "tls", "secretName") or secret) != secret:
        problems.append(f"nats values: config.cluster.tls.secretName must be {secret} as well")
    certificates = [c for c in of_kind(resources, "Certificate") if (c.get("spec") or {}).get("secretName") == secret]
    if not certificates:
        problems.append(f"Certificate: none issues Secret {secret}, which the NATS servers mount")
    names = {str(n) for c in certificates for n in (c.get("spec") or {}).get("dnsNames") or []}
    if certificates and clustered and f"*.{HEADLESS}" not in names:
        problems.append(f"{ident(certificates[0])}: dnsNames lack *.{HEADLESS} (the routes' names)")
    for res, where, container in containers(resources):
        env = container_env(container, resources)
        if "NATS_URL" not in env:
            continue
        url = urlsplit(env["NATS_URL"])
        if url.scheme != "tls":
            problems.append(f"{where}: NATS_URL must be tls:// (the servers require TLS)")
        if certificates and url.hostname not in names:
            problems.append(f"{where}: NATS_URL host {url.hostname} is not among the certificate's dnsNames")
        ca_file = env.get("IPAAS_NATS_TLS_CA_FILE", "")
        if not ca_file:
            problems.append(f"{where}: no IPAAS_NATS_TLS_CA_FILE: it cannot verify the servers' certificate")
        else:
            problems += _ca_problems(where, ca_file, container, pod_spec(res) or {}, secret)
    return problems
