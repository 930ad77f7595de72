"""Which service instances ``make up`` runs, on which ports, with which environment."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from deploy.local.config import REPO_ROOT, SERVICE_MODULES, LauncherConfig
from deploy.local.infra import free_port
from deploy.local.ports import PortPicker
from deploy.local.quickstart import LOOPBACK
from deploy.local.supervisor import ProcessSpec
from libs.common.bus.permissions import inbox_prefix

METRICS_OFFSET = 1000


def _metrics_preferred(port: int) -> int:
    return port + METRICS_OFFSET if port + METRICS_OFFSET < 65536 else free_port()


def service_exists(name: str, root: Path = REPO_ROOT) -> bool:
    """A service is started once its package has a ``__main__.py``."""
    return (root / "services" / name / "__main__.py").is_file()


def _instances(config: LauncherConfig) -> list[tuple[str, str, int]]:
    """(service, instance name, preferred port) in start order."""
    single = {"auth": config.auth_port, "gateway": config.gateway_port}
    replicated = {"scheduler": config.scheduler_ports, "executor": config.executor_ports}  # one instance per port
    out: list[tuple[str, str, int]] = []
    for service in config.services:
        if service in single:
            out.append((service, service, single[service]))
        else:
            out += [(service, f"{service}-{i}", p) for i, p in enumerate(replicated[service], 1)]
    return out


def service_env(
    config: LauncherConfig,
    *,
    service: str,
    instance: str,
    port: int,
    nats_url: str,
    database_url: str,
    auth_url: str,
    nats_identity: bool = False,
    metrics_port: int | None = None,
) -> dict[str, str]:
    """The environment of one instance: the caller's, plus what wires it to the local platform.

    ``nats_identity``: ``nats_url`` carries the service's own NATS user (the embedded,
    authorized NATS), so its reply inboxes must use that identity's prefix.
    """
    env = {k: v for k, v in config.passthrough_env.items() if not k.startswith("IPAAS_LOCAL_")}
    if nats_identity:
        env[f"IPAAS_{service.upper()}_NATS_INBOX_PREFIX"] = inbox_prefix(service)
    env.update(
        {
            "NATS_URL": nats_url,
            "DATABASE_URL": database_url,
            "IPAAS_HTTP_HOST": config.host,
            "IPAAS_HTTP_PORT": str(port),
            "IPAAS_HTTP_METRICS_PORT": str(metrics_port if metrics_port is not None else port + METRICS_OFFSET),
            "IPAAS_DEV_MODE": "true",
            # The launcher provisions the streams and consumers itself (as admin) before starting services.
            "IPAAS_NATS_PROVISION": "false",
            "LOG_LEVEL": config.log_level,
            "OTEL_SERVICE_NAME": service,
            "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={instance}",
            "IPAAS_AUTH_URL": auth_url,
            "IPAAS_JWKS_URL": f"{auth_url}/.well-known/jwks.json",
            "IPAAS_AUTH_DEV_KEYS_DIR": str(config.keys_dir),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    if service == "executor":
        # The quick start's workflow calls the gateway's /dev/echo on this machine: the executors may
        # reach its loopback address, on top of what the caller allows.  Only here, never by default.
        allowed = [c.strip() for c in env.get("IPAAS_EGRESS_ALLOW_CIDRS", "").split(",") if c.strip()]
        env["IPAAS_EGRESS_ALLOW_CIDRS"] = ",".join([*allowed, LOOPBACK] if LOOPBACK not in allowed else allowed)
    return env


def plan(
    config: LauncherConfig,
    picker: PortPicker,
    *,
    nats_url: str,
    database_url: str,
    root: Path = REPO_ROOT,
    nats_urls: Mapping[str, str] | None = None,
    database_urls: Mapping[str, str] | None = None,
) -> tuple[list[ProcessSpec], list[str]]:
    """Specs for every instance whose service exists, and the names of services that do not exist yet.

    ``nats_urls`` (service -> URL with that service's NATS user and password) is given when
    the launcher runs the authorized embedded NATS; otherwise every instance gets ``nats_url``.
    ``database_urls`` (service -> URL as that service's Postgres role) likewise for the embedded
    Postgres; otherwise every instance gets ``database_url``.
    """
    nats_urls = nats_urls or {}
    database_urls = database_urls or {}
    missing = [s for s in config.services if not service_exists(s, root)]
    chosen = [(s, i, p) for s, i, p in _instances(config) if s not in missing]
    ports = {instance: picker.pick(instance, preferred) for _, instance, preferred in chosen}
    # /metrics has its own listener: the instance's port + 1000 (9080, 9081, ...), or a free one.
    metrics = {
        instance: picker.pick(f"{instance} metrics", _metrics_preferred(ports[instance])) for _, instance, _ in chosen
    }
    auth_port = ports.get("auth", config.auth_port)
    auth_url = f"http://{config.host}:{auth_port}"
    specs = [
        ProcessSpec(
            name=instance,
            argv=(sys.executable, "-m", SERVICE_MODULES[service]),
            env=service_env(
                config,
                service=service,
                instance=instance,
                port=ports[instance],
                nats_url=nats_urls.get(service, nats_url),
                database_url=database_urls.get(service, database_url),
                auth_url=auth_url,
                nats_identity=service in nats_urls,
                metrics_port=metrics[instance],
            ),
            cwd=str(root),
            port=ports[instance],
        )
        for service, instance, _ in chosen
    ]
    return specs, missing
