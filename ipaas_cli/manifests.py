"""Workflows declared in YAML: reading ``-f <file or dir>`` into validated definitions.

A file holds one workflow per YAML document (``---`` between them), or a
``workflows:`` list.  Each is the body of ``POST /api/workflows``, plus one
convenience: ``action.credential: <name>`` instead of ``credential_id``
(resolved against the tenant's credentials, so one repository serves servers
whose ids differ); the same holds in each step's ``action`` of a multi-step
workflow (``steps[*].action.credential``)::

    name: orders to slack
    trigger: {type: webhook}
    action:
      type: slack_message
      credential: team slack
      config: {text: "New order {{ payload.order_id }}"}
    is_active: true        # optional, default true

Names must be unique across the files: ``apply`` matches workflows by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ipaas_cli.errors import UsageError

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Manifest:
    source: str  # file (and document number) it came from
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body["name"])


def files_of(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        if not found:
            raise UsageError(f"no .yaml or .yml file under {path}")
        return found
    if path.is_file():
        return [path]
    raise UsageError(f"no such file or directory: {path}")


def _documents(path: Path) -> list[Any]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}") from exc
    out: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and set(doc) == {"workflows"}:
            if not isinstance(doc["workflows"], list):
                raise UsageError(f"{path}: `workflows` must be a list")
            out.extend(doc["workflows"])
        else:
            out.append(doc)
    return out


def load(path: Path) -> list[Manifest]:
    manifests: list[Manifest] = []
    seen: dict[str, str] = {}
    for file in files_of(path):
        for n, doc in enumerate(_documents(file), start=1):
            source = f"{file}#{n}"
            if not isinstance(doc, dict):
                raise UsageError(f"{source}: a workflow is a mapping, got {type(doc).__name__}")
            name = doc.get("name")
            if not isinstance(name, str) or not name:
                raise UsageError(f"{source}: a workflow needs a `name`")
            if name in seen:
                raise UsageError(f"{source}: workflow {name!r} is already declared in {seen[name]}")
            seen[name] = source
            manifests.append(Manifest(source, doc))
    return manifests


def names_a_credential(manifest: Manifest) -> bool:
    """Whether any action (the one, or a step's) gives ``credential: <name>``."""
    steps = manifest.body.get("steps")
    nested = [s.get("action") for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []
    return any(isinstance(a, dict) and "credential" in a for a in [manifest.body.get("action"), *nested])


def _resolved(action: Any, where: str, credentials: dict[str, str]) -> Any:
    if not isinstance(action, dict) or "credential" not in action:
        return action
    action = dict(action)
    name = action.pop("credential")
    if "credential_id" in action:
        raise UsageError(f"{where}: give `credential` or `credential_id`, not both")
    if not isinstance(name, str) or name not in credentials:
        raise UsageError(f"{where}: no credential named {name!r} (see `ipaas credentials list`)")
    action["credential_id"] = credentials[name]
    return action


def resolve_credentials(manifest: Manifest, credentials: dict[str, str]) -> dict[str, Any]:
    """The body with every ``credential: <name>`` replaced by ``credential_id``.

    That is the one ``action``, and the ``action`` of each of ``steps`` (filter steps have none).
    The manifest itself is left as it was.
    """
    body = dict(manifest.body)
    if "action" in body:
        body["action"] = _resolved(body["action"], manifest.source, credentials)
    steps = body.get("steps")
    if isinstance(steps, list):
        resolved: list[Any] = []
        for index, step in enumerate(steps):
            if isinstance(step, dict) and "action" in step:
                where = f"{manifest.source}: steps[{index}] ({step.get('id', '?')})"
                step = {**step, "action": _resolved(step["action"], where, credentials)}
            resolved.append(step)
        body["steps"] = resolved
    return body
