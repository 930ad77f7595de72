"""Run a service (``python -m services.<name>``) as a subprocess and wait for readiness.

A service connects to Postgres as its own role, as in every deployment: a ``DATABASE_URL``
of the harness's superuser is replaced by the same database as ``ipaas_<service>``
(``own_role=False`` keeps the superuser, for a test that needs it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.infra import free_port
from libs.common.db.roles import SERVICE_ROLES
from tests.helpers.pg_roles import as_role, is_superuser_url

REPO_ROOT = Path(__file__).resolve().parents[2]
_SERVICE_MODULE = re.compile(r"^services\.([a-z_]+)$")


@dataclass
class ServiceProcess:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        """Where ``/metrics`` is served: its own port, not :attr:`url`."""
        return f"http://127.0.0.1:{self.metrics_port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health/ready", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.logs()[-4000:]}")


def start_service(
    module: str,
    *,
    port: int,
    env: Mapping[str, str],
    log_dir: Path,
    args: tuple[str, ...] = (),
    wait: bool = True,
    timeout: float = 30.0,
    metrics_port: int | None = None,
    own_role: bool = True,
) -> ServiceProcess:
    """Start ``python -m <module>`` with ``IPAAS_HTTP_PORT=<port>``, a free metrics port, plus ``env``.

    A service connects to Postgres as its own role (``own_role=False`` keeps the URL given).
    """
    metrics_port = metrics_port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("IPAAS_", "OTEL_"))}
    # Against the open test NATS a service provisions its own streams; a test of a secured NATS says false.
    full_env.update(
        {
            "IPAAS_HTTP_PORT": str(port),
            "IPAAS_HTTP_METRICS_PORT": str(metrics_port),
            "IPAAS_HTTP_HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            "OTEL_TRACES_EXPORTER": "none",
            "IPAAS_NATS_PROVISION": "true",
        }
    )
    full_env.update(env)
    full_env["PYTHONPATH"] = str(REPO_ROOT)
    match = _SERVICE_MODULE.match(module)
    dsn = full_env.get("DATABASE_URL", "")
    if own_role and match is not None and match.group(1) in SERVICE_ROLES and is_superuser_url(dsn):
        full_env["DATABASE_URL"] = as_role(dsn, match.group(1))
    name = module.rsplit(".", 1)[-1]
    log_path = log_dir / f"{name}-{port}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    svc = ServiceProcess(
        name=name,
        port=port,
        proc=proc,
        log_path=log_path,
        env=dict(env),
        metrics_port=int(full_env["IPAAS_HTTP_METRICS_PORT"]),
    )
    if wait:
        try:
            svc.wait_ready(timeout)
        except BaseException:
            svc.kill()
            raise
    return svc
