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
PROCESS_FIXTURES = {"service", "launch", "private_pg", "nats_cluster"}
PROCESS_CALLS = {"start_service", "PostgresServer", "NatsCluster"}


def _calls(node: ast.AST) -> set[str]:
    calls = [n.func for n in ast.walk(node) if isinstance(n, ast.Call)]
    return {f.id if isinstance(f, ast.Name) else getattr(f, "attr", "") for f in calls}


def _parametrized(f: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = [d.args[0] for d in f.decorator_list if isinstance(d, ast.Call) and "parametrize" in ast.unparse(d.func)]
    return {n.strip() for a in names if isinstance(a, ast.Constant) for n in str(a.value).split(",")}


def unmarked_process_tests(path: Path, root: Path = TESTS) -> list[str]:
    """The tests of ``path`` that start a process of their own and are not marked slow."""
    tree = ast.parse(path.read_text())
    marks = [ast.unparse(n.value) for n in tree.body if isinstance(n, ast.Assign) and "pytestmark" in ast.unparse(n)]
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    starting = PROCESS_FIXTURES | {f.name for f in functions if f.name[:5] != "test_" and _calls(f) & PROCESS_CALLS}
    return [
        f"{path.relative_to(root)}::{f.name}"
        for f in functions
        if f.name.startswith("test_")
        and not any("slow" in m for m in marks + [ast.unparse(d) for d in f.decorator_list])
        and ({a.arg for a in f.args.args} - _parametrized(f) & starting or _calls(f) & PROCESS_CALLS)
    ]


def test_every_test_that_starts_a_process_is_marked_slow() -> None:
    files = [p for d in ("unit", "integration") for p in sorted((TESTS / d).rglob("test_*.py"))]
    assert len(files) > 50  # the scan sees the tree
    unmarked = [name for p in files for name in unmarked_process_tests(p)]
    assert unmarked == [], "mark these @pytest.mark.slow (or run the executor in-process):\n" + "\n".join(unmarked)


def test_the_scan_finds_an_unmarked_subprocess_test(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(
        """
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
    )
    found = unmarked_process_tests(tmp_path / "test_sample.py", tmp_path)
    assert [name.split("::")[1] for name in found] == ["test_starts_a_service", "test_own_pg", "test_calls"]
