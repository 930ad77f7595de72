"""Fixtures shared by the e2e tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.launcher import REPO_ROOT, Run, launcher_env, start


@pytest.fixture
def local_dir(tmp_path: Path) -> Path:
    """Where this test's launcher keeps its data."""
    return tmp_path / "local"


@pytest.fixture
def launch(tmp_path: Path, local_dir: Path) -> Iterator[Callable[..., Run]]:
    """``launch(**settings)`` starts ``python -m deploy.local`` with ``launcher_env(local_dir, **settings)``
    (``launch(env=...)``: with that environment); whatever is still running at the end is killed."""
    runs: list[Run] = []

    def _launch(env: dict[str, str] | None = None, **settings: str) -> Run:
        run = start(tmp_path / f"launcher-{len(runs)}.log", local_dir, env or launcher_env(local_dir, **settings))
        runs.append(run)
        return run

    yield _launch
    for run in runs:
        run.kill_all()


def launch_to_the_end(env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m deploy.local`` with ``env``, run until it exits (a launcher that refuses to start)."""
    return subprocess.run(
        [sys.executable, "-m", "deploy.local"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
