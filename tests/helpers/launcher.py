"""Running ``python -m deploy.local`` (``make up``) as a subprocess in e2e tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from deploy.local.infra import free_port
from deploy.local.nats_users import with_user
from deploy.local.pg_roles import with_role
from libs.common.db.roles import OWNER
from tests.helpers.wait import wait_until_sync

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 75.0


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    log: Path
    local_dir: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.local_dir / "launcher.json").read_text()))

    def wait_ready(self) -> dict[str, Any]:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"launcher exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            return any(line.startswith("[local]") and " ready: " in line for line in self.output().splitlines())

        try:
            wait_until_sync(ready, timeout=READY_TIMEOUT, interval=0.2, message="the launcher's ready line")
        except AssertionError:
            raise AssertionError(f"launcher not ready:\n{self.output()[-6000:]}") from None
        return self.state()

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill_all(self) -> None:
        """A failed test must not leave a platform running."""
        if self.proc.poll() is not None:
            return
        kids = self.descendants()
        self.proc.kill()
        for kid in kids:
            with contextlib.suppress(psutil.Error):
                kid.kill()


def start(log: Path, local_dir: Path, env: dict[str, str]) -> Run:
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.local"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    return Run(proc, log, local_dir)


def launcher_env(local_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without platform settings, plus free ports and ``local_dir``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IPAAS_", "OTEL_")) and k not in ("NATS_URL", "DATABASE_URL")
    }
    ports = [free_port() for _ in range(8)]
    env.update(
        {
            "IPAAS_LOCAL_DIR": str(local_dir),
            "IPAAS_LOCAL_NATS_PORT": str(ports[0]),
            "IPAAS_LOCAL_PG_PORT": str(ports[1]),
            "IPAAS_LOCAL_GATEWAY_PORT": str(ports[2]),
            "IPAAS_LOCAL_AUTH_PORT": str(ports[3]),
            "IPAAS_LOCAL_SCHEDULER_PORTS": f"{ports[4]},{ports[5]}",
            "IPAAS_LOCAL_EXECUTOR_PORTS": f"{ports[6]},{ports[7]}",
            "IPAAS_LOCAL_READY_TIMEOUT_SECONDS": "70",
            "IPAAS_LOCAL_GRACE_SECONDS": "20",
            "OTEL_TRACES_EXPORTER": "none",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def nats_passwords(state: dict[str, Any]) -> dict[str, str]:
    """The embedded NATS's passwords by identity (empty when the launcher runs no authorization)."""
    if not state.get("nats_users_file"):
        return {}
    return dict(json.loads(Path(state["nats_users_file"]).read_text()))


def nats_url_as(state: dict[str, Any], identity: str) -> str:
    """The launcher's NATS URL with ``identity``'s user and password."""
    return with_user(str(state["nats_url"]), identity, nats_passwords(state)[identity])


def nats_admin_url(state: dict[str, Any]) -> str:
    """The launcher's NATS URL with the local ``admin`` identity (when it runs NATS with authorization)."""
    return nats_url_as(state, "admin") if nats_passwords(state) else str(state["nats_url"])


def pg_passwords(state: dict[str, Any]) -> dict[str, str]:
    """The embedded Postgres's role passwords (empty when the launcher was given a DATABASE_URL)."""
    if not state.get("pg_users_file"):
        return {}
    return dict(json.loads(Path(state["pg_users_file"]).read_text()))


def database_url_as(state: dict[str, Any], role: str = OWNER) -> str:
    """The launcher's database as ``role`` (the owner by default), with its password."""
    passwords = pg_passwords(state)
    return with_role(str(state["database_url"]), role, passwords[role]) if passwords else str(state["database_url"])
