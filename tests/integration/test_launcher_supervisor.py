"""The launcher's supervisor with real child processes: prefixed logs, restart after a crash,
and a stop that leaves neither the child nor its grandchildren alive."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from deploy.local.supervisor import ProcessSpec, Supervised
from tests.helpers.wait import wait_until

# First start: print, spawn a grandchild, crash with 3.  Later starts: print, spawn a
# grandchild, ignore SIGTERM and run until killed.
CHILD = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    from pathlib import Path
    runs = Path(sys.argv[1])
    n = len(runs.read_text()) if runs.exists() else 0
    runs.write_text("x" * (n + 1))
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(sys.argv[2], "a") as fh:
        fh.write(f"{grandchild.pid}\\n")
    print(f"hello from run {n + 1}", flush=True)
    print("x" * 200000, flush=True)
    if n == 0:
        sys.exit(3)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(300)
""")


@pytest.mark.slow
async def test_crash_is_restarted_with_prefixed_logs_and_stop_kills_the_whole_group(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    runs, grandchild_file = tmp_path / "runs", tmp_path / "grandchild.pid"
    lines: list[str] = []
    sup = Supervised(
        ProcessSpec(
            name="fake",
            argv=(sys.executable, str(script), str(runs), str(grandchild_file)),
            env={"PATH": "/usr/bin:/bin"},
            cwd=str(tmp_path),
        ),
        lines.append,
        backoff_max=1.0,
    )
    sup.start()
    try:
        await wait_until(lambda: "hello from run 2" in "\n".join(lines), timeout=20, message="the restarted child")
        assert "[fake] hello from run 1" in lines
        assert any(line.startswith("[fake] exited with code 3; restarting") for line in lines)
        assert all(line.startswith("[fake]") for line in lines)
        assert sup.restarts == 1

        await wait_until(lambda: len(grandchild_file.read_text().split()) == 2, timeout=10)
        first_gc, second_gc = (int(p) for p in grandchild_file.read_text().split())
        # The crashed run's grandchild went down with its process group.
        assert not psutil.pid_exists(first_gc) or psutil.Process(first_gc).status() == psutil.STATUS_ZOMBIE
        child_pid = sup.pid
        assert child_pid is not None
        grandchild = psutil.Process(second_gc)
        assert grandchild.is_running()

        # The child ignores SIGTERM: after the grace period it is killed, with its grandchild.
        code = await sup.stop(grace=1.0)
        assert code is not None and code < 0
        assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
        await wait_until(
            lambda: not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE,
            timeout=5,
            message="the grandchild to die",
        )
        assert len(runs.read_text()) == 2  # not restarted after stop
    finally:
        await sup.stop(grace=1.0)


async def test_stop_of_a_well_behaved_child_is_a_clean_exit(tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "print('up', flush=True)\n"
        "time.sleep(300)\n"
    )
    lines: list[str] = []
    sup = Supervised(
        ProcessSpec(name="ok", argv=(sys.executable, str(script)), env={}, cwd=str(tmp_path)),
        lines.append,
        label_width=6,
    )
    sup.start()
    try:
        await wait_until(lambda: any(line.endswith(" up") for line in lines), timeout=10)
        assert lines[0].startswith("[ok]     up")
    finally:
        assert await sup.stop(grace=10.0) == 0
    assert sup.restarts == 0
