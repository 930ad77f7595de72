"""The three dependency sets: each lock matches pyproject.toml, they agree on every pin, and the
image installs the runtime lock only, on a digest-pinned base, as a non-root user."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCKS = {name: REPO / "requirements" / f"{name}.lock" for name in ("runtime", "local", "dev")}
DOCKERFILE = REPO / "deploy" / "k8s" / "Dockerfile"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _entries(lock: Path) -> dict[str, tuple[str, frozenset[str], set[str]]]:
    """name -> (version, hashes, the packages or sets it is there for ("via"))."""
    out: dict[str, tuple[str, frozenset[str], set[str]]] = {}
    blocks = re.split(r"\n(?=[a-z0-9])", lock.read_text())
    for block in blocks:
        first = block.splitlines()[0]
        if first.startswith("#") or "==" not in first:
            continue
        name, version = first.split(";")[0].split(" ")[0].split("==")
        hashes = frozenset(re.findall(r"--hash=(sha256:[0-9a-f]{64})", block))
        notes = [line.strip().lstrip("#").strip() for line in block.splitlines() if line.strip().startswith("#")]
        via = {note.removeprefix("via").strip().split(" ")[0] for note in notes}
        via -= {"", "-c"}
        out[canonicalize_name(name)] = (version, hashes, via)
    return out


def _direct(extra: str | None) -> list[Requirement]:
    specs = PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]
    return [Requirement(s) for s in specs if not s.startswith("ipaas")]


def test_every_requirement_is_pinned_with_hashes_and_each_lock_holds_its_set() -> None:
    sets = {
        "runtime": _direct(None),
        "local": _direct(None) + _direct("local"),
        "dev": _direct(None) + _direct("local") + _direct("dev"),
    }
    for name, lock in LOCKS.items():
        entries = _entries(lock)
        assert "make lock" in lock.read_text().splitlines()[1], f"{lock.name}: not written by make lock"
        assert all(hashes for _, hashes, _ in entries.values()), f"{lock.name}: a requirement without hashes"
        for req in sets[name]:
            pinned = entries.get(canonicalize_name(req.name))
            assert pinned is not None, f"{lock.name} lacks {req.name} (run make lock)"
            assert req.specifier.contains(pinned[0], prereleases=True), f"{lock.name}: {req.name}=={pinned[0]}"


def test_the_sets_agree_on_every_pin_and_hash() -> None:
    runtime, local, dev = (_entries(LOCKS[n]) for n in ("runtime", "local", "dev"))
    assert set(runtime) < set(local) < set(dev)
    for name, (version, hashes, _) in local.items():
        assert dev[name][:2] == (version, hashes), name
    for name, (version, hashes, _) in runtime.items():
        assert local[name][:2] == (version, hashes), name


def test_no_local_or_dev_package_is_in_the_runtime_set() -> None:
    runtime = _entries(LOCKS["runtime"])
    for extra in ("local", "dev"):
        for req in _direct(extra):
            assert canonicalize_name(req.name) not in runtime, f"{req.name} ({extra}) is in the runtime lock"
    # Everything in it is there for the runtime dependencies, directly or through one another.
    for name, (_, _, via) in runtime.items():
        assert via and via <= set(runtime) | {"ipaas"}, f"{name} is in the runtime lock for {via}"


def test_the_dockerfile_installs_the_runtime_lock_only_on_a_pinned_base_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    lines = [
        line.strip()
        for line in text.replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    installs = [line for line in lines if "pip install" in line]
    assert installs and all("--require-hashes" in i and "-r requirements/runtime.lock" in i for i in installs)
    assert all(re.search(r"-r\s+(\S+)", i) and len(re.findall(r"-r\s+\S+", i)) == 1 for i in installs)
    copied = [line.split()[1:] for line in lines if line.startswith("COPY")]
    sources = {src for parts in copied for src in parts[:-1] if not src.startswith("--")}
    assert {s for s in sources if s.startswith("requirements") or s.endswith(".lock")} == {"requirements/runtime.lock"}
    assert not [s for s in sources if s.startswith(("tests", "deploy/local", "deploy/k8s", "pyproject"))]
    # Every stage starts from an image pinned by digest (the ARG's default).
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base.group(1))
    assert [line for line in lines if line.startswith("FROM")] == [
        "FROM ${PYTHON_IMAGE} AS build",
        "FROM ${PYTHON_IMAGE}",
    ]
    user = [line for line in lines if line.startswith("USER")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root")
    assert lines.index(user[-1]) > max(i for i, line in enumerate(lines) if line.startswith(("RUN", "COPY")))
