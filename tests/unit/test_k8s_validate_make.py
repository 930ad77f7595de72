"""``make k8s-validate`` renders with the real kustomize and fails on manifests broken on purpose.

Each case copies deploy/k8s, breaks the prod overlay with a patch (as an SRE's edit would), and
runs the Makefile's target on the copy (``K8S_ROOT``), with this test's Python (``PY``) and
without the install step (``-o``: the dependency sets are this interpreter's).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.k8s import kustomize
from tests.helpers.make_targets import k8s_copy, run_make

pytestmark = pytest.mark.slow


def _broken_copy(tmp_path: Path, patches: list[dict[str, Any]]) -> Path:
    root = k8s_copy(tmp_path)
    kfile = root / "overlays" / "prod" / "kustomization.yaml"
    spec = yaml.safe_load(kfile.read_text())
    spec["patches"] += patches
    kfile.write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def _json_patch(kind: str, name: str, *ops: dict[str, Any]) -> dict[str, Any]:
    return {"target": {"kind": kind, "name": name}, "patch": yaml.safe_dump(list(ops))}


def test_the_target_renders_with_the_kustomize_of_the_wheel_and_passes_the_real_manifests(tmp_path: Path) -> None:
    done = run_make("k8s-validate", f"K8S_ROOT={_broken_copy(tmp_path, [])}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Kustomize Version: v5" in done.stdout and "schemas: Kubernetes 1.29 (strict)" in done.stdout
    assert {"base: ok", "overlays/dev: ok", "overlays/prod: ok"} <= set(done.stdout.splitlines())
    assert Path(sys.executable).parent in kustomize.kubectl().parents  # the wheel's kubectl, beside this Python


BROKEN = [
    pytest.param(
        _json_patch(
            "Deployment", "gateway", {"op": "add", "value": 45, "path": "/spec/template/spec/terminationGracePeriod"}
        ),
        "Deployment/gateway: schema of Kubernetes 1.29: spec.template.spec: Additional properties are not "
        "allowed ('terminationGracePeriod' was unexpected)",
        id="invalid-field",
    ),
    pytest.param(
        _json_patch("Deployment", "auth", {"op": "remove", "path": "/spec/template/spec/containers/0/readinessProbe"}),
        "Deployment/auth container auth: no readinessProbe",
        id="missing-probe",
    ),
    pytest.param(
        _json_patch(
            "Deployment",
            "gateway",
            {
                "op": "add",
                "path": "/spec/template/spec/containers/0/env/-",
                "value": {"name": "IPAAS_GATEWAY_MAX_BODY_BYTE", "value": "2097152"},
            },
        ),
        "Deployment/gateway container gateway: env IPAAS_GATEWAY_MAX_BODY_BYTE is not a setting of "
        "python -m services.gateway",
        id="env-not-a-setting",
    ),
    pytest.param(
        _json_patch(
            "ConfigMap", "ipaas-config", {"op": "add", "path": "/data/IPAAS_EXECUTOR_MAX_INFLIGHT", "value": "64"}
        ),
        "ConfigMap/ipaas-config: IPAAS_EXECUTOR_MAX_INFLIGHT is not a setting of any container that loads it",
        id="configmap-key-not-a-setting",
    ),
]


@pytest.mark.parametrize(("patch", "expected"), BROKEN)
def test_the_target_fails_on_a_manifest_broken_on_purpose(tmp_path: Path, patch: dict[str, Any], expected: str) -> None:
    done = run_make("k8s-validate", f"K8S_ROOT={_broken_copy(tmp_path, [patch])}")
    assert done.returncode != 0
    assert "overlays/prod: " in done.stdout and "problem(s)" in done.stdout
    assert expected in done.stdout, done.stdout
