"""One child process, by PID: started with its output in a log file, waited on until ready, stopped.

Used by the private servers of :mod:`deploy.local.infra` and by the tests'
service and launcher processes, so each is started, waited on and stopped
the same way:

- :meth:`Child.spawn` starts ``argv`` with its stdin closed and its stdout and
  stderr appended to :attr:`Child.log_path` (or thrown away when the program
  writes its own log there, or read from a pipe, ``proc.stdout``, by a caller
  that copies it somewhere, as the launcher's supervisor does);
- :meth:`Child.wait_ready` polls :meth:`Child.ready` until it says yes, and
  fails at once, with the log's tail, if the process exits first;
- :meth:`Child.stop` sends :attr:`Child.stop_signal` (SIGTERM unless the program
  wants another), waits up to a grace period, then sends SIGKILL; it returns
  the exit code.  :meth:`Child.kill` is SIGKILL straight away.

Only this process's own child is signalled, by its PID; nothing is looked up by
name.  A child spawned with ``whole_group`` (in a session of its own) is
signalled as a process group, so its grandchildren get each signal too, and
those that outlive it are killed when it is stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

LOG_TAIL_CHARS = 4000
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    name = "child"
    stop_signal = signal.SIGTERM
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    whole_group = False

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        capture: bool = True,
        pipe: bool = False,
        new_session: bool = False,
        whole_group: bool = False,
        user: int | None = None,
        group: int | None = None,
        die_with_parent: bool = False,
    ) -> None:
        """Start ``argv``; with ``capture``, its output goes to the end of :attr:`log_path` (``pipe``: to a pipe).

        ``die_with_parent`` (Linux): the child gets SIGKILL should this process die without stopping it.
        """
        log = open(self.log_path, "ab") if capture and self.log_path is not None else None  # noqa: SIM115 - the child's
        self.whole_group = whole_group
        try:
            self.proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe else log or subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=new_session or whole_group,
                user=user,
                group=group,
                preexec_fn=_die_with_parent if die_with_parent else None,
            )
        finally:
            if log is not None:
                log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.alive() and self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        """Whether the program is ready for use (a port that answers, a line in its log)."""
        raise NotImplementedError

    def wait_ready(self, timeout: float = 30.0, interval: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.logs()[-LOG_TAIL_CHARS:]}")
            if self.ready():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.logs()[-LOG_TAIL_CHARS:]}")
            time.sleep(interval)

    def stop(self, timeout: float = 20.0) -> int | None:
        """:attr:`stop_signal`, then SIGKILL if it still runs ``timeout`` seconds later (the grace); the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.send(self.stop_signal)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.send(signal.SIGKILL)  # with ``whole_group``: grandchildren that outlived it
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.send(signal.SIGKILL)
            self.proc.wait(10)

    def send(self, sig: int) -> None:
        """``sig`` to the child while it runs, or with ``whole_group`` to its process group (even after it exited)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.whole_group:
                os.killpg(self.proc.pid, sig)
            elif self.proc.poll() is None:
                self.proc.send_signal(sig)
