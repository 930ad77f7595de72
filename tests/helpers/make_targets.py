"""The Makefile's targets run from a test, and the copy of deploy/k8s they may be pointed at (``K8S_ROOT``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from deploy.k8s.validate import K8S_DIR

REPO = K8S_DIR.parents[1]


def run_make(*args: str) -> subprocess.CompletedProcess[str]:
    """``make <args>`` at the repository root with this test's Python (``PY``) and without the install step
    (``-o``: the dependency sets are this interpreter's); the caller checks the exit status."""
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", *args, f"PY={sys.executable}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def k8s_copy(tmp_path: Path) -> Path:
    """A copy of deploy/k8s's manifests (its Python left out) at ``tmp_path / "k8s"``."""
    root = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return root
