"""Run a service (``python -m services.<name>``) as a subprocess and wait for readiness; read what its
``/metrics`` serves.

A service connects to Postgres as its own role, as in every deployment: a ``DATABASE_URL``
of the harness's superuser is replaced by the same database as ``ipaas_<service>``
(``own_role=False`` keeps the superuser, for a test that needs it).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from deploy.local.infra import free_port
from deploy.local.process import Child
from libs.common.db.roles import SERVICE_ROLES
from tests.helpers.pg_roles import as_role, is_superuser_url

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENMETRICS = "application/openmetrics-text; version=1.0.0"  # the Accept header that asks for exemplars
_SERVICE_MODULE = re.compile(r"^services\.([a-z_]+)$")
# What every service of the harness runs with (as a process or in-process): on loopback, not exporting traces,
# and provisioning its own streams against the open test NATS (a test of a secured NATS says false).
HARNESS_ENV = {"OTEL_TRACES_EXPORTER": "none", "IPAAS_NATS_PROVISION": "true", "IPAAS_HTTP_HOST": "127.0.0.1"}


def outside_env() -> dict[str, str]:
    """This process's environment without its ``IPAAS_`` and ``OTEL_`` variables (a child starts from it)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("IPAAS_", "OTEL_"))}


class ServiceProcess(Child):
    """``python -m services.<name>``; ready when ``/health/ready`` answers 200."""

    proc: subprocess.Popen[bytes]  # spawned as soon as it is made (start_service)

    def __init__(self, name: str, port: int, log_path: Path, env: dict[str, str], metrics_port: int) -> None:
        self.name, self.port, self.log_path, self.env, self.metrics_port = name, port, log_path, env, metrics_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        """Where ``/metrics`` is served: its own port, not :attr:`url`."""
        return f"http://127.0.0.1:{self.metrics_port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health/ready", timeout=1) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except OSError:  # urllib.error.URLError is one
            return False

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, SIGKILL after ``timeout``; returns the exit code."""
        return int(self.stop(timeout) or 0)


def start_service(
    module: str,
    *,
    env: Mapping[str, str],
    log_dir: Path,
    port: int | None = None,
    args: tuple[str, ...] = (),
    wait: bool = True,
    timeout: float = 30.0,
    own_role: bool = True,
) -> ServiceProcess:
    """Start ``python -m <module>`` with ``IPAAS_HTTP_PORT=<port>`` (a free one unless given), a free metrics port,
    plus ``env``.

    A service connects to Postgres as its own role (``own_role=False`` keeps the URL given).
    """
    port = port or free_port()
    full_env = {
        **outside_env(),
        "IPAAS_HTTP_PORT": str(port),
        "IPAAS_HTTP_METRICS_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
        **HARNESS_ENV,
        **env,
        "PYTHONPATH": str(REPO_ROOT),
    }
    match = _SERVICE_MODULE.match(module)
    dsn = full_env.get("DATABASE_URL", "")
    if own_role and match is not None and match.group(1) in SERVICE_ROLES and is_superuser_url(dsn):
        full_env["DATABASE_URL"] = as_role(dsn, match.group(1))
    name = module.rsplit(".", 1)[-1]
    svc = ServiceProcess(
        name, port, log_dir / f"{name}-{port}.log", dict(env), int(full_env["IPAAS_HTTP_METRICS_PORT"])
    )
    svc.spawn([sys.executable, "-m", module, *args], env=full_env, cwd=REPO_ROOT)
    if wait:
        try:
            svc.wait_ready(timeout)
        except BaseException:
            svc.kill()
            raise
    return svc


def metrics_text(metrics_url: str, accept: str | None = None) -> str:
    """What ``<metrics_url>/metrics`` serves (``accept``: e.g. the OpenMetrics type, for exemplars)."""
    request = urllib.request.Request(f"{metrics_url}/metrics", headers={"Accept": accept} if accept else {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - a local test server
        return str(resp.read().decode())


def metric(text: str, name: str, labels: str = "") -> float:
    """``name``'s value in a ``/metrics`` text, summed over its label sets; with ``labels`` (a regex
    inside the braces, e.g. ``result="duplicate"``) over the sets that match it."""
    braces = rf"\{{{labels}\}}" if labels else r"(?:\{[^}]*\})?"
    return sum(float(v) for v in re.findall(rf"^{name}{braces} (\S+)$", text, re.M))


def exemplar_trace_ids(text: str, sample: str, **labels: str) -> set[str]:
    """The ``trace_id`` of every exemplar on the samples named ``sample`` whose labels include ``labels``, in a
    ``/metrics`` text asked for as :data:`OPENMETRICS`; parsing ``text`` checks that it is valid OpenMetrics."""
    families = list(text_string_to_metric_families(text))  # type: ignore[no-untyped-call]
    return {
        s.exemplar.labels["trace_id"]
        for f in families
        for s in f.samples
        if s.name == sample and s.exemplar is not None and all(s.labels.get(k) == v for k, v in labels.items())
    }


async def run_module(*args: str, env: Mapping[str, str], timeout: float = 60.0) -> tuple[int, str]:
    """``python -m <args>`` to its end, as a one-off command (a Job, an operator's shell) runs it: this
    environment without its ``IPAAS_`` and ``OTEL_`` variables, plus ``env``.  Its exit code, and its standard
    output followed by its standard error."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=REPO_ROOT,
        env={**outside_env(), **env, "PYTHONPATH": str(REPO_ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    return int(proc.returncode or 0), (out + err).decode(errors="replace")
