"""The bus is the only door to NATS: no production module outside ``libs/common/bus`` touches nats-py.

Scanned: every module under ``services/``, ``ipaas_cli/``, ``deploy/`` and ``libs/`` except the
bus package.  Refused:
- importing ``nats`` (nats-py) in any form;
- reaching for the bus's client or JetStream context (an attribute ``.nc`` or ``.js``);
- reading or writing a private attribute of nats-py's objects (a name nats-py gives one of its own
  ``self._...`` attributes, on anything but ``self``/``cls``), by attribute or by ``getattr``/``setattr``.

Tests are not scanned: they use raw clients to probe the server (permissions, restarts).
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import nats.aio.client
import nats.aio.msg
import nats.aio.subscription
import nats.js.client
import nats.js.kv
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("services", "ipaas_cli", "deploy", "libs")
BUS_PACKAGE = ROOT / "libs" / "common" / "bus"
DOOR_ATTRIBUTES = frozenset({"nc", "js"})


def _nats_private_names() -> frozenset[str]:
    names: set[str] = set()
    for module in (nats.aio.client, nats.aio.msg, nats.aio.subscription, nats.js.client, nats.js.kv):
        names.update(re.findall(r"self\.(_[A-Za-z][A-Za-z0-9_]*)", inspect.getsource(module)))
    return frozenset(names)


NATS_PRIVATE = _nats_private_names()


def violations(source: str) -> Iterator[tuple[int, str]]:
    """``(line, what)`` for every way ``source`` goes around the bus."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "nats" or alias.name.startswith("nats."):
                    yield node.lineno, f"imports {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and (module == "nats" or module.startswith("nats.")):
                yield node.lineno, f"imports from {module}"
        elif isinstance(node, ast.Attribute):
            if node.attr in DOOR_ATTRIBUTES:
                yield node.lineno, f"reaches for .{node.attr}"
            elif node.attr in NATS_PRIVATE and not _is_self(node.value):
                yield node.lineno, f"touches nats-py's private .{node.attr}"
        elif isinstance(node, ast.Call) and _reflects_around(node):
            yield node.lineno, "getattr/setattr of the client or a private nats-py attribute"


def _reflects_around(call: ast.Call) -> bool:
    """``getattr``/``setattr`` naming ``nc``/``js`` or a nats-py private attribute (on anything but self)."""
    if not (isinstance(call.func, ast.Name) and call.func.id in ("getattr", "setattr")) or len(call.args) < 2:
        return False
    name = call.args[1].value if isinstance(call.args[1], ast.Constant) else None
    return name in DOOR_ATTRIBUTES or (name in NATS_PRIVATE and not _is_self(call.args[0]))


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _modules() -> list[Path]:
    found = [p for top in SCANNED for p in sorted((ROOT / top).rglob("*.py")) if BUS_PACKAGE not in p.parents]
    return [p for p in found if ".venv" not in p.parts]


def test_no_module_outside_the_bus_goes_around_it() -> None:
    modules = _modules()
    assert len(modules) > 100, "the scan found too few modules: is ROOT right?"
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in modules
        for line, what in violations(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "use libs.common.bus instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "around"),
    [
        ("import nats", True),
        ("import nats.errors as e", True),
        ("from nats.aio.msg import Msg", True),
        ("from nats import errors", True),
        ("x = bus.nc.max_payload", True),
        ("info = await self._bus.js.stream_info('EVENTS')", True),
        ("previous = client._reconnected_cb", True),
        ("bus.client._reconnected_cb = cb", True),
        ("getattr(nc, '_reconnected_cb')", True),
        ("setattr(bus, 'nc', other)", True),
        ("n = msg._client", True),
        # Ordinary code is left alone.
        ("from libs.common.bus import Bus, Message", False),
        ("self._closed = True", False),
        ("await bus.subscribe(subject, cb)", False),
        ("import natsort", False),
        ("from .nats_users import users", False),
    ],
)
def test_the_scan_catches_each_way_around_and_only_those(source: str, around: bool) -> None:
    assert (list(violations(source)) != []) is around, source
