"""``make test-fast`` stays fast: what starts a process of its own carries the ``slow`` marker.

``make test-fast`` runs tests/unit and tests/integration without the ``slow`` marker.  A test there
that starts a service as a subprocess (the ``service`` and ``launch`` fixtures, ``start_service``) or a
Postgres of its own (``private_pg``, ``nats_cluster``, a fixture of its module that builds a
``PostgresServer``) takes seconds: it must say ``slow``, on itself or through the module's
``pytestmark``.  The executor runs in-process through the ``executor`` fixture instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
FAST_DIRS = ("unit", "integration")
PROCESS_FIXTURES = frozenset({"service", "launch", "private_pg", "nats_cluster"})
PROCESS_CALLS = frozenset({"start_service", "PostgresServer", "NatsCluster"})


def _calls(node: ast.AST) -> set[str]:
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            names.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return names


def _is_slow(decorators: list[ast.expr]) -> bool:
    return any("mark.slow" in ast.unparse(d) for d in decorators)


def _parametrized(decorators: list[ast.expr]) -> set[str]:
    names: set[str] = set()
    for d in decorators:
        if isinstance(d, ast.Call) and ast.unparse(d.func).endswith("mark.parametrize") and d.args:
            first = d.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names |= {n.strip() for n in first.value.split(",")}
    return names


def unmarked_process_tests(path: Path, root: Path = TESTS) -> list[str]:
    """The tests of ``path`` that start a process of their own and are not marked slow."""
    tree = ast.parse(path.read_text())
    module_slow = any(
        isinstance(n, ast.Assign)
        and any(ast.unparse(t) == "pytestmark" for t in n.targets)
        and "slow" in ast.unparse(n.value)
        for n in tree.body
    )
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    local_fixtures = {
        f.name
        for f in functions
        if any("fixture" in ast.unparse(d) for d in f.decorator_list) and _calls(f) & PROCESS_CALLS
    }
    found = []
    for f in functions:
        if not f.name.startswith("test_") or module_slow or _is_slow(f.decorator_list):
            continue
        fixtures = {a.arg for a in f.args.args} - _parametrized(f.decorator_list)
        if fixtures & (PROCESS_FIXTURES | local_fixtures) or _calls(f) & PROCESS_CALLS:
            found.append(f"{path.relative_to(root)}::{f.name}")
    return found


def test_every_test_that_starts_a_process_is_marked_slow() -> None:
    files = [p for d in FAST_DIRS for p in sorted((TESTS / d).rglob("test_*.py"))]
    assert len(files) > 50  # the scan sees the tree
    unmarked = [name for p in files for name in unmarked_process_tests(p)]
    assert unmarked == [], "mark these @pytest.mark.slow (or run the executor in-process):\n" + "\n".join(unmarked)


def test_the_scan_finds_an_unmarked_subprocess_test(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    source = """
import pytest

@pytest.fixture
def own_pg(tmp_path):
    return PostgresServer(tmp_path, 1)

def test_starts_a_service(service): ...

@pytest.mark.slow
def test_marked(service): ...

@pytest.mark.parametrize("service", ["gateway"])
def test_only_a_parameter(service): ...

async def test_own_pg(own_pg): ...

def test_calls(tmp_path):
    start_service("services.gateway", port=1, env={}, log_dir=tmp_path)

def test_in_process(executor): ...
"""
    sample.write_text(source)
    found = unmarked_process_tests(sample, tmp_path)
    assert [name.split("::")[1] for name in found] == ["test_starts_a_service", "test_own_pg", "test_calls"]
