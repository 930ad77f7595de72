"""Looking up one resource, or a Deployment's container, in manifests as kustomize renders them."""

from __future__ import annotations

from typing import Any

Resources = list[dict[str, Any]]


def resource(resources: Resources, kind: str, name: str) -> dict[str, Any]:
    """The ``kind`` named ``name`` (StopIteration when there is none)."""
    found: dict[str, Any] = next(r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name)
    return found


def container(resources: Resources, deployment: str) -> dict[str, Any]:
    """The first (the service's own) container of Deployment ``deployment``."""
    found: dict[str, Any] = resource(resources, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
    return found
