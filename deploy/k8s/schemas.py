"""Every rendered object against the Kubernetes API's own schemas, strictly (``kubernetes-validate``).

Built-in kinds are validated with the OpenAPI schemas of :data:`MIN_KUBERNETES`, the lowest
Kubernetes version the platform supports (deploy/k8s/README.md): a field that version does not
know, a misspelt field (strict: unknown fields are errors), a wrong type or a missing required
field is a problem.  Using a newer field means raising the supported version, here and in the
README, first.

Custom resources (CloudNativePG's ``Cluster``, KEDA's ``ScaledObject``, cert-manager's
``Certificate`` and ``Issuer``) have no schema in that package, and no package on PyPI ships
their CRDs' schemas; they get the structural checks of the other modules (``checks``, ``links``,
``pg_auth``, ``nats_tls``).  An object of any other kind without a schema is a problem.
"""

from __future__ import annotations

import json
from functools import lru_cache

import kubernetes_validate

from deploy.k8s.resources import Resource, ident

MIN_KUBERNETES = "1.29"
# API groups of the custom resources the manifests use (no schema packaged for them).
CRD_GROUPS = {"postgresql.cnpg.io", "keda.sh", "cert-manager.io", "monitoring.coreos.com"}


def is_custom(res: Resource) -> bool:
    return str(res.get("apiVersion", "")).split("/")[0] in CRD_GROUPS


def check_schema(res: Resource, version: str = MIN_KUBERNETES) -> list[str]:
    """The first schema violation of one object, if any (one is enough to point at the manifest)."""
    if is_custom(res) or not res.get("kind") or not res.get("apiVersion"):
        return []  # checks.check_identity reports a missing kind or apiVersion
    return list(_check(json.dumps(res, sort_keys=True, default=str), version))


@lru_cache(maxsize=1024)
def _check(document: str, version: str) -> tuple[str, ...]:
    """Validation is the slow part (a schema file per kind); the same object is validated once."""
    res = json.loads(document)
    try:
        kubernetes_validate.validate(res, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return (f"{ident(res)}: Kubernetes {version} has no {res['kind']} in {res['apiVersion']}",)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        return (f"{ident(res)}: schema of Kubernetes {version}: {where}: {exc.message}",)
    return ()


def check_schemas(resources: list[Resource], version: str = MIN_KUBERNETES) -> list[str]:
    return [problem for res in resources for problem in check_schema(res, version)]
