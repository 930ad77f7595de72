"""``make``'s installer: what it says a machine lacks, what it counts, how it reads pip's progress."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deploy.local import install

REPO = Path(__file__).resolve().parents[2]


def test_an_old_python_is_refused_with_the_package_to_install() -> None:
    linux = install.missing_on_this_machine((3, 9, 2), True, True, "linux")
    assert len(linux) == 1 and "Python 3.11 or newer is needed" in linux[0] and "3.9.2" in linux[0]
    assert "sudo apt-get install python3.11 python3.11-venv" in linux[0] and "make PYTHON=python3.11" in linux[0]
    assert "brew install python@3.11" in install.missing_on_this_machine((3, 10, 0), True, True, "darwin")[0]


def test_a_missing_venv_module_names_the_debian_package() -> None:
    (problem,) = install.missing_on_this_machine((3, 11, 2), True, False, "linux")
    assert "sudo apt-get install python3.11-venv (or python3-venv)" in problem
    assert install.missing_on_this_machine((3, 12, 1), True, True, "linux") == []


def test_each_lock_is_counted_and_each_fetched_file_sized() -> None:
    counts = {name: len(install.lock_packages(install.lock_path(name))) for name, _ in install.SETS}
    assert 0 < counts["runtime"] < counts["local"] < counts["dev"]
    assert "aiohttp==" in " ".join(install.lock_packages(install.lock_path("runtime")))
    assert install.fetched("  Downloading aiohttp-3.14.5-cp311-cp311-manylinux.whl (1.7 MB)") == (
        "aiohttp-3.14.5-cp311-cp311-manylinux.whl",
        "download",
        1.7,
    )
    assert install.fetched("  Using cached pytest-9.2.0-py3-none-any.whl (400 kB)") == (
        "pytest-9.2.0-py3-none-any.whl",
        "cached",
        0.4,
    )
    assert install.fetched("  Downloading aiohttp-3.14.5-cp311.whl.metadata (8.1 kB)") is None
    assert install.fetched("Collecting aiohttp==3.14.5") is None
    assert (install.size_text(1.74), install.size_text(0.015)) == ("1.7 MB", "15 kB")


def _output(*argv: str, check: bool = True) -> str:
    """What ``argv`` run at the repository root prints (it must succeed, unless ``check`` is false)."""
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=check).stdout


def test_make_runs_the_installer_then_says_what_to_run_next() -> None:
    plan = _output("make", "-n", "-B", "-f", "Makefile", "install", "VENV=/nonexistent-venv")
    assert "deploy/local/install.py /nonexistent-venv" in plan and "install.py --next" in plan
    # make -q's exit status says whether the goal is up to date: not a failure here.
    assert ".DEFAULT_GOAL := install" in _output("make", "-pRrq", "-f", "Makefile", check=False)
    steps = _output(sys.executable, "deploy/local/install.py", "--next")
    assert "make up" in steps and "make test" in steps
