"""Supervised subprocesses: prefixed logs, restart with backoff, stop with a grace period.

Each run of a child is a :class:`deploy.local.process.Child` spawned with ``whole_group``.

Each child runs in a session (and so a process group) of its own: a Ctrl-C in
the terminal reaches only the launcher, which then stops the children in order.
Stopping sends SIGTERM to the whole group, waits up to the grace period and then
sends SIGKILL, so no grandchild survives either.  On Linux each child also gets
SIGKILL if the launcher itself dies without cleaning up.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from deploy.local.process import Child

Output = Callable[[str], None]

# A child that ran this long before it crashed is restarted without delay growth.
STABLE_AFTER_SECONDS = 30.0
FIRST_BACKOFF_SECONDS = 1.0
EXIT_POLL_SECONDS = 0.1


async def _exited(child: Child) -> int:
    """The exit code, as soon as the process is gone.

    Waiting for the output pipe to close is no use: a surviving grandchild may
    hold it open forever; the return code is known earlier.
    """
    assert child.proc is not None
    while (code := child.proc.poll()) is None:  # noqa: ASYNC110 - no exit event to wait on
        await asyncio.sleep(EXIT_POLL_SECONDS)
    return code


def write_line(stream: TextIO) -> Output:
    """An output that never raises: a closed terminal (SIGHUP, a broken pipe) must not stop the cleanup."""

    def _out(line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            stream.write(line + "\n")
            stream.flush()

    return _out


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # instance name, e.g. "executor-2"
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str
    port: int | None = None


class Supervised:
    """One child process, kept alive until :meth:`stop`."""

    def __init__(
        self,
        spec: ProcessSpec,
        output: Output,
        *,
        label_width: int = 0,
        backoff_max: float = 30.0,
        on_start: Callable[[Supervised], None] | None = None,
    ) -> None:
        self.spec = spec
        self.output = output
        self.prefix = f"[{spec.name}]".ljust(label_width + 2)
        self.backoff_max = backoff_max
        self.on_start = on_start
        self.child: Child | None = None
        self.restarts = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"supervise-{self.spec.name}")

    def _say(self, text: str) -> None:
        self.output(f"{self.prefix} {text}")

    async def _pump(self, child: Child) -> None:
        """Copy the child's output line by line, prefixed; long lines are passed through in pieces."""
        assert child.proc is not None and child.proc.stdout is not None
        loop = asyncio.get_running_loop()
        stdout = asyncio.StreamReader(limit=65536 * 2)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout), child.proc.stdout)
        pending = b""
        try:
            while chunk := await stdout.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.output(f"{self.prefix} {line.decode(errors='replace').rstrip()}")
                if len(pending) > 65536:
                    self.output(f"{self.prefix} {pending.decode(errors='replace')}")
                    pending = b""
        finally:
            transport.close()
        if pending:
            self.output(f"{self.prefix} {pending.decode(errors='replace').rstrip()}")

    async def _run(self) -> None:
        backoff = FIRST_BACKOFF_SECONDS
        while not self._stopping.is_set():
            started = time.monotonic()
            self.child = child = Child()
            spec = self.spec
            try:  # synchronous: no stop() can come in between
                child.spawn(spec.argv, env=spec.env, cwd=spec.cwd, pipe=True, whole_group=True, die_with_parent=True)
            except OSError as exc:
                self._say(f"cannot start: {exc}")
                code: int | None = None
            else:
                if self.on_start is not None:
                    self.on_start(self)
                pump = asyncio.create_task(self._pump(child))
                code = await _exited(child)
                # Its grandchildren may still hold the output pipe open: end them, then finish copying.
                child.send(signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pump, timeout=5)
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STABLE_AFTER_SECONDS:
                backoff = FIRST_BACKOFF_SECONDS
            self.restarts += 1
            self._say(f"exited with code {code}; restarting in {backoff:.0f}s (restart #{self.restarts})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
            backoff = min(backoff * 2, self.backoff_max)

    async def stop(self, grace: float) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; returns the exit code."""
        self._stopping.set()
        child = self.child
        if child is not None and child.alive():
            child.send(signal.SIGTERM)
            try:
                await asyncio.wait_for(_exited(child), timeout=grace)
            except TimeoutError:
                self._say(f"still running {grace:.0f}s after SIGTERM; sending SIGKILL")
                child.send(signal.SIGKILL)
                await _exited(child)
        if child is not None:
            child.send(signal.SIGKILL)  # grandchildren that outlived it
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=5)
        return child.proc.returncode if child is not None and child.proc is not None else None
