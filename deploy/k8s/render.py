"""Render a kustomization offline, the subset of kustomize these manifests use.

Supported fields: ``resources`` (files and directories with a kustomization),
``patches`` (strategic-merge patches from ``path`` or inline ``patch``, and
JSON 6902 patches with a ``target``), ``images``, ``replicas`` and ``namespace``.
Any other field is an error, so a manifest never depends on something this
renderer silently ignores.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "patches", "images", "replicas", "namespace"}
# Kinds that have no namespace.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PriorityClass", "StorageClass"}
# Lists whose items a strategic-merge patch merges by this key instead of replacing.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "ports": "name",
              "volumes": "name", "volumeMounts": "name", "envFrom": None}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


class RenderError(ValueError):
    """The kustomization cannot be rendered."""


def load_yaml_docs(path: Path) -> list[Resource]:
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise RenderError(f"{path}: {exc}") from exc
    out: list[Resource] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise RenderError(f"{path}: a document is not a mapping")
        out.append(doc)
    return out


def render(directory: Path) -> list[Resource]:
    """The resources of the kustomization in ``directory``, with its transformations applied."""
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        raise RenderError(f"{directory}: no kustomization.yaml")
    docs = load_yaml_docs(kfile)
    if len(docs) != 1:
        raise RenderError(f"{kfile}: expected one document")
    spec = docs[0]
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise RenderError(f"{kfile}: unsupported fields {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources += render(path)
        elif path.is_file():
            resources += load_yaml_docs(path)
        else:
            raise RenderError(f"{kfile}: resource {entry} does not exist")
    for patch in spec.get("patches", []):
        _apply_patch(resources, patch, directory, kfile)
    for item in spec.get("replicas", []):
        _set_replicas(resources, item, kfile)
    for image in spec.get("images", []):
        _set_image(resources, image)
    if "namespace" in spec:
        for res in resources:
            if res.get("kind") not in CLUSTER_SCOPED:
                res.setdefault("metadata", {})["namespace"] = spec["namespace"]
    return resources


def _matches(res: Resource, target: dict[str, Any]) -> bool:
    meta = res.get("metadata", {})
    return all((
        target.get("kind") in (None, res.get("kind")),
        target.get("name") in (None, meta.get("name")),
        target.get("namespace") in (None, meta.get("namespace")),
    ))


def _apply_patch(resources: list[Resource], entry: dict[str, Any], directory: Path, kfile: Path) -> None:
    if "path" in entry:
        docs = load_yaml_docs(directory / entry["path"])
        body: Any = docs[0] if len(docs) == 1 else docs
    elif "patch" in entry:
        body = yaml.safe_load(entry["patch"])
    else:
        raise RenderError(f"{kfile}: a patch needs 'path' or 'patch'")
    target = entry.get("target")
    if isinstance(body, list):  # JSON 6902
        if not target:
            raise RenderError(f"{kfile}: a JSON 6902 patch needs a target")
        hits = [r for r in resources if _matches(r, target)]
        for res in hits:
            for op in body:
                json6902(res, op)
    else:
        target = target or {"kind": body.get("kind"), "name": body.get("metadata", {}).get("name")}
        hits = [r for r in resources if _matches(r, target)]
        for res in hits:
            merged = strategic_merge(res, body)
            res.clear()
            res.update(merged)
    if not hits:
        raise RenderError(f"{kfile}: patch {entry.get('path', target)} matches no resource")


def strategic_merge(base: Any, patch: Any, key: str | None = None) -> Any:
    """Maps merge recursively; lists of named items merge by name; other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            out[k] = strategic_merge(out[k], v, k) if k in out else copy.deepcopy(v)
        return out
    merge_key = MERGE_KEYS.get(key or "")
    if isinstance(base, list) and isinstance(patch, list) and merge_key:
        out_list = copy.deepcopy(base)
        index = {item.get(merge_key): i for i, item in enumerate(out_list) if isinstance(item, dict)}
        for item in patch:
            name = item.get(merge_key) if isinstance(item, dict) else None
            if name in index:
                out_list[index[name]] = strategic_merge(out_list[index[name]], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise RenderError(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json6902(doc: Resource, op: dict[str, Any]) -> None:
    """Apply one add/replace/remove operation in place."""
    parts = _pointer(op["path"])
    parent: Any = doc
    for part in parts[:-1]:
        try:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        except (KeyError, IndexError, ValueError):
            raise RenderError(f"{op['path']}: no such path") from None
    last, kind = parts[-1], op.get("op")
    if isinstance(parent, list):
        if kind == "add" and last == "-":
            parent.append(op["value"])
            return
        idx = int(last)
        if kind == "add":
            parent.insert(idx, op["value"])
        elif kind == "replace":
            parent[idx] = op["value"]
        elif kind == "remove":
            del parent[idx]
        else:
            raise RenderError(f"unsupported op {kind}")
        return
    if kind in ("add", "replace"):
        if kind == "replace" and last not in parent:
            raise RenderError(f"{op['path']}: nothing to replace")
        parent[last] = op["value"]
    elif kind == "remove":
        parent.pop(last)
    else:
        raise RenderError(f"unsupported op {kind}")


def _set_replicas(resources: list[Resource], item: dict[str, Any], kfile: Path) -> None:
    hits = [r for r in resources if r.get("kind") in ("Deployment", "StatefulSet")
            and r.get("metadata", {}).get("name") == item["name"]]
    if not hits:
        raise RenderError(f"{kfile}: replicas for unknown workload {item['name']}")
    for res in hits:
        res.setdefault("spec", {})["replicas"] = int(item["count"])


def pod_spec(res: Resource) -> dict[str, Any] | None:
    if res.get("kind") not in POD_TEMPLATE_KINDS:
        return None
    spec: dict[str, Any] | None = res.get("spec", {}).get("template", {}).get("spec")
    return spec


def _set_image(resources: list[Resource], image: dict[str, Any]) -> None:
    for res in resources:
        spec = pod_spec(res)
        if spec is None:
            continue
        for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            current = str(container.get("image", ""))
            name = current.split("@")[0].rsplit(":", 1)[0] if ":" in current.split("/")[-1] else current
            if name != image["name"]:
                continue
            new_name = image.get("newName", name)
            container["image"] = f"{new_name}:{image['newTag']}" if "newTag" in image else new_name
