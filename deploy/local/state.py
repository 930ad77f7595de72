"""The launcher's state file (``<local dir>/launcher.json``) and its single-instance lock.

The state file tells tests and people what runs where (URLs, ports, PIDs).  The
PIDs are recorded with their start time, so after a launcher that was killed
with SIGKILL, the next one can stop exactly the processes it left behind and
nothing else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil


def redact_url(url: str) -> str:
    """``scheme://user:***@host/...``: a URL safe to print or write down."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"


class AlreadyRunning(RuntimeError):
    """Another launcher holds the lock on this data directory."""


@dataclass
class ProcessRecord:
    name: str
    pid: int
    create_time: float

    @classmethod
    def of(cls, name: str, pid: int) -> ProcessRecord:
        try:
            created = psutil.Process(pid).create_time()
        except psutil.Error:
            created = 0.0
        return cls(name=name, pid=pid, create_time=created)


@dataclass
class LauncherState:
    pid: int
    nats_url: str = ""
    database_url: str = ""
    nats_users_file: str = ""  # the embedded NATS's passwords (0600), when the launcher runs it
    pg_users_file: str = ""  # the embedded Postgres's role passwords (0600), when the launcher runs it
    ready: bool = False
    services: dict[str, str] = field(default_factory=dict)  # instance name -> base URL
    processes: list[ProcessRecord] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)


def read_records(path: Path) -> list[ProcessRecord]:
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return [ProcessRecord(**r) for r in raw.get("processes", [])]
    except (OSError, ValueError, TypeError):
        return []


def stop_leftovers(path: Path, announce: Callable[[str], None], timeout: float = 15.0) -> None:
    """Stop processes a previous, killed launcher left running (matched by PID and start time)."""
    alive: list[psutil.Process] = []
    for record in read_records(path):
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(record.pid)
            if record.create_time and abs(proc.create_time() - record.create_time) < 0.01:
                alive.append(proc)
                announce(f"stopping {record.name} (pid {record.pid}) left over from an earlier run")
    for proc in alive:
        # Postgres shuts down fast on SIGINT; everything else on SIGTERM.
        with contextlib.suppress(psutil.Error):
            proc.send_signal(2 if "postgres" in proc.name() else 15)
    _, still = psutil.wait_procs(alive, timeout=timeout)
    for proc in still:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(still, timeout=5)


class InstanceLock:
    """An exclusive ``flock`` on the lock file; the kernel releases it if we die."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the launcher's lifetime
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise AlreadyRunning(
                f"another launcher is already running with data directory {self.path.parent}"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
