"""Workflows and their immutable versions; each change queues an outbox row in its transaction.

A create counts the tenant's live workflows under a transaction-level advisory lock
of that tenant, so concurrent creates see each other and the quota holds exactly.
Pages of workflows and versions are read by :mod:`services.gateway.store.pages`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from libs.common.http.errors import Conflict, Forbidden, NotFound
from libs.common.keyring import KeyRing
from libs.common.models.workflows import STANDARD_WEBHOOKS, WorkflowCreate, WorkflowDefinition
from services.gateway.hooks import secret_store
from services.gateway.hooks.signature import new_secret, secret_key
from services.gateway.outbox import add_message, workflow_change
from services.gateway.quotas import workflows_exceeded

# What to_out reads: a workflow with its current version's definition (and whether it has a webhook
# secret: sealed in webhook_secrets, or still in the plaintext column until the gateway seals it).
COLUMNS = """
w.id, w.tenant_id, w.name, w.current_version, w.is_active, w.trigger_type,
(w.webhook_secret IS NOT NULL OR EXISTS (SELECT 1 FROM webhook_secrets s
                                          WHERE s.workflow_id = w.id AND s.valid_until IS NULL)) AS has_secret,
w.schedule_error, w.created_at, w.updated_at, v.definition
"""
CURRENT = "workflows w JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version"
_SELECT = f"SELECT {COLUMNS} FROM {CURRENT}"

_NOT_FOUND = "workflow not found"

# Advisory lock class (first key of the two-key form) serialising one tenant's creates.
QUOTA_LOCK_CLASS = 0x5746_5141
# The tenant's live workflows, counted no further than the limit.
_COUNT_UP_TO = """
SELECT count(*) FROM (SELECT 1 FROM workflows WHERE tenant_id = $1 AND deleted_at IS NULL LIMIT $2) AS live
"""

log = logging.getLogger(__name__)

UNVERIFIED_WARNING = (
    "verify is none: requests are not authenticated, so anyone who knows this workflow's URL can trigger it"
)


def to_out(row: asyncpg.Record, *, secret: str | None = None) -> dict[str, Any]:
    definition: dict[str, Any] = row["definition"]
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "trigger": definition["trigger"],
        "action": definition.get("action"),
        "is_active": row["is_active"],
        "version": row["current_version"],
        "schedule_error": row["schedule_error"],
        "webhook": None,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    if "steps" in definition:
        out["steps"] = definition["steps"]
    if row["trigger_type"] == "webhook":
        out["webhook"] = {"url": f"/hooks/{row['id']}"}
        if secret is not None:
            out["webhook"]["secret"] = secret
        if definition["trigger"].get("verify") == "none":
            out["warnings"] = [UNVERIFIED_WARNING]
    return out


def _definition(body: WorkflowDefinition) -> dict[str, Any]:
    return body.model_dump(mode="json", include={"name", "trigger", "action", "steps"})


async def get(
    conn: asyncpg.Connection | asyncpg.Pool, tenant_id: uuid.UUID, workflow_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record:
    sql = _SELECT + " WHERE w.tenant_id = $1 AND w.id = $2 AND w.deleted_at IS NULL"
    row = await conn.fetchrow(sql + (" FOR UPDATE OF w" if lock else ""), tenant_id, workflow_id)
    if row is None:
        raise NotFound(_NOT_FOUND)
    return row


async def create(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, body: WorkflowCreate, *, max_workflows: int, ring: KeyRing
) -> dict[str, Any]:
    """A new workflow at version 1, unless the tenant already has ``max_workflows`` (422)."""
    workflow_id = uuid.uuid4()
    definition = _definition(body)
    secret = new_secret() if body.trigger.type == "webhook" else None
    try:
        async with pool.acquire() as conn, conn.transaction():
            # One create per tenant at a time counts and inserts, so concurrent creates cannot overshoot.
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2::uuid::text))", QUOTA_LOCK_CLASS, tenant_id
            )
            if await conn.fetchval(_COUNT_UP_TO, tenant_id, max_workflows) >= max_workflows:
                raise workflows_exceeded(max_workflows)
            await conn.execute(
                """INSERT INTO workflows (id, tenant_id, name, current_version, is_active, trigger_type)
                   VALUES ($1, $2, $3, 1, $4, $5)""",
                workflow_id,
                tenant_id,
                body.name,
                body.is_active,
                body.trigger.type,
            )
            if secret is not None:
                await secret_store.add(conn, ring, tenant_id, workflow_id, secret)
            await conn.execute(
                "INSERT INTO workflow_versions (workflow_id, version, definition) VALUES ($1, 1, $2::jsonb)",
                workflow_id,
                definition,
            )
            await add_message(conn, *workflow_change(tenant_id, workflow_id, 1, "created", is_active=body.is_active))
            row = await get(conn, tenant_id, workflow_id)
    except asyncpg.ForeignKeyViolationError as exc:
        raise Forbidden("the token's tenant does not exist", code="unknown_tenant") from exc
    return to_out(row, secret=secret)


async def _new_version(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    definition: dict[str, Any],
    *,
    is_active: bool,
    change: str,
    ring: KeyRing,
) -> tuple[int, str | None]:
    """Append ``definition`` as the next version and make it current. Returns (version, new secret)."""
    version = int(row["current_version"]) + 1
    trigger_type = definition["trigger"]["type"]
    secret = new_secret() if trigger_type == "webhook" and not row["has_secret"] else None
    await conn.execute(
        "INSERT INTO workflow_versions (workflow_id, version, definition) VALUES ($1, $2, $3::jsonb)",
        row["id"],
        version,
        definition,
    )
    await conn.execute(
        """UPDATE workflows SET name = $2, current_version = $3, is_active = $4, trigger_type = $5,
               schedule_error = NULL, updated_at = now()
           WHERE id = $1""",
        row["id"],
        definition["name"],
        version,
        is_active,
        trigger_type,
    )
    if trigger_type != "webhook":
        await secret_store.remove_all(conn, row["id"])
    elif secret is not None:
        await secret_store.add(conn, ring, row["tenant_id"], row["id"], secret)
    await add_message(conn, *workflow_change(row["tenant_id"], row["id"], version, change, is_active=is_active))
    return version, secret


async def replace(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, workflow_id: uuid.UUID, body: WorkflowCreate, *, ring: KeyRing
) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        row = await get(conn, tenant_id, workflow_id, lock=True)
        _, secret = await _new_version(
            conn, row, _definition(body), is_active=body.is_active, change="updated", ring=ring
        )
        return to_out(await get(conn, tenant_id, workflow_id), secret=secret)


async def rollback(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, workflow_id: uuid.UUID, target: int, *, ring: KeyRing
) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        row = await get(conn, tenant_id, workflow_id, lock=True)
        definition = await conn.fetchval(
            "SELECT definition FROM workflow_versions WHERE workflow_id = $1 AND version = $2", workflow_id, target
        )
        if definition is None:
            raise NotFound(f"version {target} not found", code="version_not_found")
        _, secret = await _new_version(
            conn, row, definition, is_active=row["is_active"], change="rolled_back", ring=ring
        )
        return to_out(await get(conn, tenant_id, workflow_id), secret=secret)


async def set_active(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, workflow_id: uuid.UUID, is_active: bool
) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        row = await get(conn, tenant_id, workflow_id, lock=True)
        await conn.execute(
            "UPDATE workflows SET is_active = $2, updated_at = now() WHERE id = $1", workflow_id, is_active
        )
        change = "enabled" if is_active else "disabled"
        await add_message(
            conn, *workflow_change(tenant_id, workflow_id, row["current_version"], change, is_active=is_active)
        )
        return to_out(await get(conn, tenant_id, workflow_id))


# Runs the executor claimed before a disable or delete committed (a claim reads the workflow's state under a
# share lock, so any claim after the commit sees it and records the event as skipped).
RUNNING_SQL = """
SELECT count(*) FROM executions
 WHERE workflow_id = $1 AND status = 'running' AND lease_until > now()
"""


async def wait_for_runs(pool: asyncpg.Pool, workflow_id: uuid.UUID, timeout: float) -> int:
    """Wait until no claimed run of the workflow is in progress (at most ``timeout``); returns how many remain.

    With this, when a disable or delete returns, nothing of the workflow runs any more.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        running = int(await pool.fetchval(RUNNING_SQL, workflow_id))
        if running == 0 or loop.time() >= deadline:
            if running:
                log.warning(
                    "runs still in progress after disable", extra={"workflow_id": str(workflow_id), "running": running}
                )
            return running
        await asyncio.sleep(0.05)


async def delete(pool: asyncpg.Pool, tenant_id: uuid.UUID, workflow_id: uuid.UUID) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await get(conn, tenant_id, workflow_id, lock=True)
        await conn.execute("UPDATE workflows SET deleted_at = now(), updated_at = now() WHERE id = $1", workflow_id)
        await secret_store.remove_all(conn, workflow_id)
        version = row["current_version"]
        await add_message(
            conn, *workflow_change(tenant_id, workflow_id, version, "deleted", is_active=row["is_active"], deleted=True)
        )


async def rotate_secret(
    pool: asyncpg.Pool,
    tenant_id: uuid.UUID,
    workflow_id: uuid.UUID,
    overlap_seconds: int,
    *,
    ring: KeyRing,
    given: str | None = None,
) -> dict[str, Any]:
    """A new current secret (``given``, or a generated one); every earlier one still inside its overlap
    stays valid until its own end."""
    secret = given or new_secret()
    async with pool.acquire() as conn, conn.transaction():
        row = await get(conn, tenant_id, workflow_id, lock=True)
        if row["trigger_type"] != "webhook":
            raise Conflict("only webhook workflows have a secret", code="not_a_webhook")
        verify = ((row["definition"] or {}).get("trigger") or {}).get("verify", STANDARD_WEBHOOKS)
        if given is not None and verify == STANDARD_WEBHOOKS:
            try:
                secret_key(given)
            except ValueError as exc:
                # The body is valid; what refuses it is the workflow's state (its verify), hence 409.
                raise Conflict(
                    "this workflow verifies Standard Webhooks, whose secret is whsec_ followed by "
                    "base64; set the trigger's verify to the sender first",
                    code="not_a_standard_secret",
                ) from exc
        until = datetime.now(UTC) + timedelta(seconds=overlap_seconds)
        await secret_store.seal_legacy_one(conn, ring, workflow_id)
        await secret_store.rotate(conn, ring, tenant_id, workflow_id, secret, until)
        await conn.execute("UPDATE workflows SET updated_at = now() WHERE id = $1", workflow_id)
        version = row["current_version"]
        await add_message(
            conn, *workflow_change(tenant_id, workflow_id, version, "secret_rotated", is_active=row["is_active"])
        )
    return {"webhook": {"url": f"/hooks/{workflow_id}", "secret": secret}, "previous_valid_until": until}


async def version_definition(pool: asyncpg.Pool, tenant_id: uuid.UUID, workflow_id: uuid.UUID, version: int) -> Any:
    """The stored definition of one version (404 for a missing workflow or version)."""
    await get(pool, tenant_id, workflow_id)
    definition = await pool.fetchval(
        "SELECT definition FROM workflow_versions WHERE workflow_id = $1 AND version = $2", workflow_id, version
    )
    if definition is None:
        raise NotFound(f"version {version} not found", code="version_not_found")
    return definition
