"""Fixtures the unit tests share."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.k8s.kustomize import render
from deploy.k8s.validate import K8S_DIR


@pytest.fixture(scope="session")
def prod() -> list[dict[str, Any]]:
    """The prod overlay as kustomize renders it, rendered once; a test that breaks it breaks a deep copy."""
    return render(K8S_DIR / "overlays" / "prod")
