"""The Postgres roles of the platform: one owner of the schema, one login role per service.

- ``ipaas`` (:data:`OWNER`) owns the database and every schema object, and is the role the
  migrations run as.  Only it may change the schema.  On Kubernetes it is the CloudNativePG
  application user; ``make up`` and the test harness create it.
- ``ipaas_<service>`` (:data:`SERVICE_ROLES`) is the role a service connects as (its
  ``DATABASE_URL`` carries the role and its password).  It holds the row privileges on its own
  tables and, on other services' tables, only the columns and statements it uses; it owns
  nothing, so it can run no DDL.  Migration ``0000_roles`` creates these roles when they are
  missing and ``0500_privileges`` grants them (the table is in docs/architecture.md).

Roles are cluster-wide; the grants live in each database.  No password is ever in a migration:
passwords come from the environment (Kubernetes Secrets, ``.local/pg-users.json`` for ``make up``).
"""

from __future__ import annotations

OWNER = "ipaas"
SERVICE_ROLES: dict[str, str] = {
    "auth": "ipaas_auth",
    "gateway": "ipaas_gateway",
    "executor": "ipaas_executor",
    "scheduler": "ipaas_scheduler",
}
ALL_ROLES: tuple[str, ...] = (OWNER, *SERVICE_ROLES.values())
