"""Fixtures the unit tests share.

This module is imported for every unit test, also in the runtime-only environment of
``tests/e2e/test_runtime_set.py``: what a fixture needs from the local or dev set (yaml,
kubectl) is imported inside that fixture, never here at the top.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def prod() -> list[dict[str, Any]]:
    """The prod overlay as kustomize renders it, rendered once; a test that breaks it breaks a deep copy."""
    from deploy.k8s.kustomize import render
    from deploy.k8s.validate import K8S_DIR

    return render(K8S_DIR / "overlays" / "prod")
