"""A documented knob does something: every field a settings class declares is read somewhere else.

The README's configuration table is checked against the settings classes
(``test_launcher_docs.py``); this checks the other direction, that no declared
setting is dead.  A field counts as read when production code accesses it as
an attribute (``.name``: a method of its own class counts, when that method is
used), or when code outside the declaring module passes its name
(``"name"``), as generic readers do.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

from pydantic_settings import BaseSettings

from tests.unit.test_launcher_docs import _own_fields, _settings_classes

REPO = Path(__file__).resolve().parents[2]
SOURCES = {p: p.read_text(encoding="utf-8") for d in ("libs", "services", "deploy") for p in (REPO / d).rglob("*.py")}


def _read_elsewhere(name: str, declared_in: Path) -> bool:
    attribute = re.compile(rf"\.{re.escape(name)}\b")
    quoted = re.compile(rf"[\"']{re.escape(name)}[\"']")
    return any(
        attribute.search(text) or (path != declared_in and quoted.search(text)) for path, text in SOURCES.items()
    )


def test_every_declared_setting_is_read() -> None:
    classes = _settings_classes()
    assert len(classes) >= 6
    dead: list[str] = []
    for cls in classes:
        module = importlib.import_module(cls.__module__)
        declared_in = Path(inspect.getfile(module)).resolve()
        dead += [f"{cls.__name__}.{name}" for name in _own_fields(cls) if not _read_elsewhere(name, declared_in)]
    assert not dead, f"declared but never read (a documented knob that does nothing): {dead}"


def test_the_check_sees_a_dead_field() -> None:
    class Probe(BaseSettings):
        never_read_anywhere_xyz: int = 1

    assert not _read_elsewhere("never_read_anywhere_xyz", Path("/nonexistent"))
    assert _own_fields(Probe) == ["never_read_anywhere_xyz"]
