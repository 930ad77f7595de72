"""Postgres roles in Kubernetes: the Cluster's managed roles, each workload's ``DATABASE_URL``.

The roles are those of :mod:`libs.common.db.roles`: the CloudNativePG application user ``ipaas``
owns the database and runs the migrations (the migrate Job, ``DATABASE_URL`` from the Secret
``<cluster>-app``, key ``uri``); each service connects as ``ipaas_<service>``, whose password
CNPG sets from the Secret ``ipaas-pg-<service>`` and the Deployment reads into ``PG_PASSWORD``:
``postgresql://ipaas_<service>:$(PG_PASSWORD)@<cluster>-rw:5432/ipaas``.

The checks: the Cluster bootstraps the database for ``ipaas`` and manages every service role
(login, password from its Secret); each service Deployment connects as its own role with its own
Secret and reads nothing of the owner's; the migrations run as the owner; the ConfigMap holds no
``DATABASE_URL``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from deploy.k8s.resources import Resource, command_line, containers, env_vars, ident, name_of, of_kind, service_of
from libs.common.db.roles import OWNER, SERVICE_ROLES

PASSWORD_VAR = "PG_PASSWORD"  # noqa: S105 - the name of a variable, not a password
DATABASE = "ipaas"
PG_PORT = 5432
MIGRATE_MODULE = "libs.common.db.migrate"


def secret_name(service: str) -> str:
    return f"ipaas-pg-{service}"


def _secret_ref(var: dict[str, Any] | None) -> dict[str, Any]:
    return dict(((var or {}).get("valueFrom") or {}).get("secretKeyRef") or {})


def check_cluster(cluster: Resource) -> list[str]:
    """The database belongs to ``ipaas``, and CNPG manages every service role from its Secret."""
    where = ident(cluster)
    spec = cluster.get("spec") or {}
    initdb = (spec.get("bootstrap") or {}).get("initdb") or {}
    problems: list[str] = []
    if initdb.get("database") != DATABASE or initdb.get("owner") != OWNER:
        problems.append(
            f"{where}: bootstrap.initdb must create database {DATABASE} owned by {OWNER} "
            "(the role the migrations run as)"
        )
    roles = {str(r.get("name")): r for r in (spec.get("managed") or {}).get("roles") or []}
    for service, role in SERVICE_ROLES.items():
        declared = roles.get(role)
        if declared is None:
            problems.append(f"{where}: managed.roles lacks {role} (the {service} service's role)")
            continue
        if declared.get("ensure", "present") != "present" or declared.get("login") is not True:
            problems.append(f"{where}: managed role {role} must be present with login: true")
        if (declared.get("passwordSecret") or {}).get("name") != secret_name(service):
            problems.append(f"{where}: managed role {role} must take its password from Secret {secret_name(service)}")
        extra = [k for k in ("superuser", "createdb", "createrole", "replication", "bypassrls") if declared.get(k)]
        if extra or declared.get("inRoles"):
            problems.append(
                f"{where}: managed role {role} must hold no attribute or membership "
                f"({', '.join(extra) or 'inRoles'}): its grants come from the migrations"
            )
    return problems


def check_service(where: str, service: str, container: dict[str, Any], cluster: str) -> list[str]:
    """A service Deployment connects as ``ipaas_<service>`` with its own Secret, and to nothing else."""
    env = env_vars(container)
    problems: list[str] = []
    ref = _secret_ref(env.get(PASSWORD_VAR))
    if ref.get("name") != secret_name(service) or ref.get("key") != "password":
        problems.append(f"{where}: env {PASSWORD_VAR} must come from Secret {secret_name(service)} key password")
    var = env.get("DATABASE_URL") or {}
    url = str(var.get("value", ""))
    parts = urlsplit(url)
    role = SERVICE_ROLES[service]
    if not url:
        problems.append(
            f"{where}: no DATABASE_URL of its own "
            f"(postgresql://{role}:$({PASSWORD_VAR})@{cluster}-rw:{PG_PORT}/{DATABASE})"
        )
    elif parts.username != role or parts.password != f"$({PASSWORD_VAR})":
        problems.append(f"{where}: DATABASE_URL must connect as Postgres role {role} with $({PASSWORD_VAR})")
    elif parts.hostname != f"{cluster}-rw" or parts.port != PG_PORT or parts.path != f"/{DATABASE}":
        problems.append(f"{where}: DATABASE_URL must point at {cluster}-rw:{PG_PORT}/{DATABASE}")
    owners = [name for name, v in env.items() if _secret_ref(v).get("name") == f"{cluster}-app"]
    owners += [
        str(src["secretRef"].get("name"))
        for src in container.get("envFrom") or []
        if "secretRef" in src and src["secretRef"].get("name") == f"{cluster}-app"
    ]
    if owners:
        problems.append(
            f"{where}: reads Secret {cluster}-app, the schema owner's credentials (only the migrate Job may)"
        )
    return problems


def check_migrations(where: str, container: dict[str, Any], cluster: str) -> list[str]:
    ref = _secret_ref(env_vars(container).get("DATABASE_URL"))
    if ref.get("name") != f"{cluster}-app" or ref.get("key") != "uri":
        return [
            f"{where}: the migrations must run as the owner {OWNER} (DATABASE_URL from Secret {cluster}-app key uri)"
        ]
    return []


def check_database_identities(resources: list[Resource]) -> list[str]:
    """Every service Deployment connects as its own role; the migrate Job as the owner; the Cluster agrees."""
    clusters = of_kind(resources, "Cluster")
    if not clusters:
        return []  # links.check_required reports the missing Cluster
    cluster = name_of(clusters[0])
    problems: list[str] = []
    for c in clusters:
        problems += check_cluster(c)
    for res in resources:
        if res.get("kind") == "ConfigMap" and "DATABASE_URL" in (res.get("data") or {}):
            problems.append(f"{ident(res)}: holds a DATABASE_URL; each workload builds its own (its role)")
    for res, where, c in containers(resources):
        if res.get("kind") == "Job" and MIGRATE_MODULE in command_line(c):
            problems += check_migrations(where, c, cluster)
            continue
        service = service_of(res, c)
        if service in SERVICE_ROLES:
            problems += check_service(where, service, c, cluster)
    return problems
