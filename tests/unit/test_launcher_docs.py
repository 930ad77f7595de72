"""Every environment variable the code reads is documented in the README's configuration table
(the public contract says so), including the launcher's own ``IPAAS_LOCAL_*`` knobs."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

from pydantic_settings import BaseSettings

from deploy.k8s.settings_env import env_names

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _settings_classes() -> list[type[BaseSettings]]:
    modules = ["libs.common.settings", "ipaas_cli.settings"]
    modules += [f"services.{p.parent.name}.settings" for p in sorted((REPO / "services").glob("*/settings.py"))]
    classes: list[type[BaseSettings]] = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        classes += [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, BaseSettings) and obj.__module__ == module_name
        ]
    return classes


def _own_fields(cls: type[BaseSettings]) -> list[str]:
    own = set(cls.__dict__.get("__annotations__", {}))
    return [name for name in cls.model_fields if name in own]


def test_every_settings_variable_is_in_the_readme() -> None:
    names: set[str] = set()
    for cls in _settings_classes():
        names |= env_names(cls)  # inherited fields too, under each class's own prefix
    assert {"NATS_URL", "DATABASE_URL", "LOG_LEVEL", "IPAAS_HTTP_PORT"} <= names
    rows = _readme_rows()  # a row for IPAAS_<SERVICE>_X documents it for each service
    missing = sorted(n for n in names if f"`{n}`" not in README and n not in rows)
    assert not missing, f"undocumented in README.md's configuration table: {missing}"


def test_every_launcher_variable_is_in_the_readme() -> None:
    source = (REPO / "deploy" / "local" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r'"(IPAAS_LOCAL_[A-Z_]+)"', source))
    assert "IPAAS_LOCAL_DIR" in names and len(names) >= 10
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert not missing, f"undocumented launcher variables: {missing}"


def _shown(value: object) -> str:
    """A default as the README's tables write it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_readme_shows_each_setting_with_its_real_default() -> None:
    rows = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| `([^`|]*)` \|", README, flags=re.MULTILINE))
    checked, wrong = 0, []
    for cls in _settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name in _own_fields(cls):
            field = cls.model_fields[name]
            alias = field.validation_alias
            variable = alias if isinstance(alias, str) else (prefix + name).upper()
            if variable not in rows or field.default_factory is not None:
                continue
            checked += 1
            if rows[variable] != _shown(field.default):
                wrong.append(f"{variable}: README {rows[variable]!r}, code {_shown(field.default)!r}")
    assert checked >= 100
    assert not wrong, f"README defaults that differ from the settings classes: {wrong}"


def _readme_rows() -> dict[str, str]:
    """Each variable of the README's tables with its default cell; ``IPAAS_<SERVICE>_X`` stands for each service."""
    rows: dict[str, str] = {}
    for variable, cell in re.findall(r"^\| `([A-Z0-9_<>]+)` \| ([^|]*) \|", README, flags=re.MULTILINE):
        for service in ("GATEWAY", "AUTH", "SCHEDULER", "EXECUTOR"):
            rows[variable.replace("<SERVICE>", service)] = cell.replace("<service>", service.lower())
    return rows


def _number_or_text(value: str) -> str:
    try:
        return _shown(float(value))
    except ValueError:
        return value


def test_the_service_docs_tables_agree_with_the_readme() -> None:
    """The service docs repeat settings beside the text that explains them: each with a default the
    README's row shows (the README is checked against the code above), never a variable it lacks.
    docs/configuration.md is left out: its tables show the values ``make up`` sets, not defaults."""
    readme = _readme_rows()
    checked, wrong = 0, []
    for doc in sorted((REPO / "docs").glob("*.md")):
        if doc.name == "configuration.md":
            continue
        text = doc.read_text(encoding="utf-8")
        for variable, default in re.findall(r"^\| `(IPAAS_[A-Z0-9_]+)` \| `([^`|]*)` \|", text, flags=re.MULTILINE):
            checked += 1
            cell = readme.get(variable)
            if cell is None:
                wrong.append(f"{doc.name}: {variable} is not in the README's configuration tables")
            elif _number_or_text(default) not in {
                _number_or_text(v) for v in re.findall(r"`([^`]*)`", cell) + re.findall(r"[^\s`,:;()]+", cell)
            }:
                wrong.append(f"{doc.name}: {variable} {default!r}, README {cell.strip()!r}")
    assert checked >= 50
    assert not wrong, wrong
