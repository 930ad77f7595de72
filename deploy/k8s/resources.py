"""Rendered Kubernetes objects as plain data, and where a workload keeps its pod spec.

Every check reads the manifests as kustomize renders them (:mod:`deploy.k8s.kustomize`): a list of
mappings, one per object, exactly as ``kubectl apply -k`` would send them.
"""

from __future__ import annotations

from typing import Any

Resource = dict[str, Any]

# Kinds that have no namespace.
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "StorageClass",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def pod_spec(res: Resource) -> dict[str, Any] | None:
    """The pod template's spec of a workload; None for anything else."""
    if res.get("kind") not in POD_TEMPLATE_KINDS:
        return None
    spec: dict[str, Any] | None = res.get("spec", {}).get("template", {}).get("spec")
    return spec
