"""Running ``python -m deploy.local`` (``make up``) as a subprocess in e2e tests."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from deploy.local.infra import free_port
from deploy.local.nats_users import with_user
from deploy.local.pg_roles import with_role
from deploy.local.process import Child
from libs.common.db.roles import OWNER
from tests.helpers.services import outside_env

REPO_ROOT = Path(__file__).resolve().parents[2]


class Run(Child):
    """``python -m deploy.local``; ready when it logs its ``[local] ... ready:`` line."""

    name = "launcher"
    proc: subprocess.Popen[bytes]  # spawned as soon as it is made (start)

    def __init__(self, log: Path, local_dir: Path) -> None:
        self.log_path, self.local_dir = log, local_dir

    def output(self) -> str:
        return self.logs()

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.local_dir / "launcher.json").read_text()))

    def ready(self) -> bool:
        return any(line.startswith("[local]") and " ready: " in line for line in self.output().splitlines())

    def wait_ready(self, timeout: float = 75.0, interval: float = 0.2) -> dict[str, Any]:  # type: ignore[override]
        super().wait_ready(timeout, interval)
        return self.state()

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def terminate(self, timeout: float = 60.0) -> int:
        return int(self.stop(timeout) or 0)

    def kill_all(self) -> None:
        """A failed test must not leave a platform running."""
        if not self.alive():
            return
        kids = self.descendants()
        self.kill()
        for kid in kids:
            with contextlib.suppress(psutil.Error):
                kid.kill()


def start(log: Path, local_dir: Path, env: dict[str, str]) -> Run:
    run = Run(log, local_dir)
    run.spawn([sys.executable, "-m", "deploy.local"], env=env, cwd=REPO_ROOT)
    return run


def launcher_env(local_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without platform settings, plus free ports and ``local_dir``."""
    ports = [free_port() for _ in range(8)]
    return {
        **{k: v for k, v in outside_env().items() if k not in ("NATS_URL", "DATABASE_URL")},
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
        **extra,
    }


def _passwords(state: dict[str, Any], users_file: str) -> dict[str, str]:
    return dict(json.loads(Path(state[users_file]).read_text())) if state.get(users_file) else {}


def nats_passwords(state: dict[str, Any]) -> dict[str, str]:
    """The embedded NATS's passwords by identity (empty when the launcher runs no authorization)."""
    return _passwords(state, "nats_users_file")


def nats_url_as(state: dict[str, Any], identity: str) -> str:
    """The launcher's NATS URL with ``identity``'s user and password."""
    return with_user(str(state["nats_url"]), identity, nats_passwords(state)[identity])


def nats_admin_url(state: dict[str, Any]) -> str:
    """The launcher's NATS URL with the local ``admin`` identity (when it runs NATS with authorization)."""
    return nats_url_as(state, "admin") if nats_passwords(state) else str(state["nats_url"])


def pg_passwords(state: dict[str, Any]) -> dict[str, str]:
    """The embedded Postgres's role passwords (empty when the launcher was given a DATABASE_URL)."""
    return _passwords(state, "pg_users_file")


def database_url_as(state: dict[str, Any], role: str = OWNER) -> str:
    """The launcher's database as ``role`` (the owner by default), with its password."""
    passwords = pg_passwords(state)
    return with_role(str(state["database_url"]), role, passwords[role]) if passwords else str(state["database_url"])
