"""Fixtures shared by the e2e tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.launcher import Run, start


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[[Path, dict[str, str]], Run]]:
    """Start ``python -m deploy.local``; whatever is still running at the end is killed."""
    runs: list[Run] = []

    def _launch(local_dir: Path, env: dict[str, str]) -> Run:
        run = start(tmp_path / f"launcher-{len(runs)}.log", local_dir, env)
        runs.append(run)
        return run

    yield _launch
    for run in runs:
        run.kill_all()
