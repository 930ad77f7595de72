"""Rows for tests, written straight to Postgres (the schema of libs/common/db/migrations)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg

from libs.common.models.events import EventEnvelope, Trigger, event_id_for


@asynccontextmanager
async def connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to ``dsn`` for the ``async with`` block alone, closed at its end."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def fetchval_once(dsn: str, query: str, *args: Any) -> Any:
    """``query``'s first value, on a connection to ``dsn`` opened for it alone and closed again."""
    async with connection(dsn) as conn:
        return await conn.fetchval(query, *args)


async def execute_once(dsn: str, statement: str, *args: Any) -> None:
    """Run ``statement`` on a connection to ``dsn`` opened for it alone and closed again."""
    async with connection(dsn) as conn:
        await conn.execute(statement, *args)


async def fetch_once(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """``query``'s rows, on a connection to ``dsn`` opened for it alone and closed again."""
    async with connection(dsn) as conn:
        rows: list[asyncpg.Record] = await conn.fetch(query, *args)
        return rows


async def create_tenant(conn: asyncpg.Connection, name: str = "test tenant") -> uuid.UUID:
    tenant_id = uuid.uuid4()
    await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant_id, name)
    return tenant_id


async def create_workflow(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    definition: dict[str, Any],
    *,
    is_active: bool = True,
    webhook_secret: str | None = None,
) -> uuid.UUID:
    """A workflow at version 1 with ``definition`` (the WorkflowDefinition JSON)."""
    workflow_id = uuid.uuid4()
    async with conn.transaction():
        await conn.execute(
            """INSERT INTO workflows (id, tenant_id, name, current_version, is_active, trigger_type, webhook_secret)
               VALUES ($1, $2, $3, 1, $4, $5, $6)""",
            workflow_id,
            tenant_id,
            definition["name"],
            is_active,
            definition["trigger"]["type"],
            webhook_secret,
        )
        await conn.execute(
            "INSERT INTO workflow_versions (workflow_id, version, definition) VALUES ($1, 1, $2::jsonb)",
            workflow_id,
            json.dumps(definition),
        )
    return workflow_id


async def add_version(conn: asyncpg.Connection, workflow_id: uuid.UUID, definition: dict[str, Any]) -> int:
    """Append a new version and make it current; returns its number."""
    async with conn.transaction():
        version: int = await conn.fetchval(
            "UPDATE workflows SET current_version = current_version + 1, updated_at = now() "
            "WHERE id = $1 RETURNING current_version",
            workflow_id,
        )
        await conn.execute(
            "INSERT INTO workflow_versions (workflow_id, version, definition) VALUES ($1, $2, $3::jsonb)",
            workflow_id,
            version,
            json.dumps(definition),
        )
    return version


async def insert_execution(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    workflow_id: uuid.UUID,
    *,
    status: str = "succeeded",
    output: object = None,
    created_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A finished execution of version 1 (webhook-triggered, one attempt) with ``status`` and ``output``."""
    execution_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO executions (id, event_id, tenant_id, workflow_id, workflow_version, trigger, status, attempts,
                                   started_at, finished_at, duration_ms, output, trace_id, created_at)
           VALUES ($1, $2, $3, $4, 1, 'webhook', $5, 1, now(), now(), 5, $6::jsonb, 'abc', $7)""",
        execution_id,
        event_id or uuid.uuid4(),
        tenant_id,
        workflow_id,
        status,
        json.dumps(output),
        created_at or datetime.now(UTC),
    )
    return execution_id


async def insert_dead_letter(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, workflow_id: uuid.UUID, *, payload: Any = None
) -> uuid.UUID:
    """A dead execution and its dead letter, replayable (a webhook event's envelope, ``payload`` or
    ``{"n": 1}``); returns the event id."""
    event_id = event_id_for(workflow_id, uuid.uuid4().hex)
    envelope = EventEnvelope(
        event_id=event_id,
        dedup_key="k",
        tenant_id=tenant_id,
        workflow_id=workflow_id,
        workflow_version=1,
        trigger=Trigger.WEBHOOK,
        payload={"n": 1} if payload is None else payload,
    )
    await insert_execution(conn, tenant_id, workflow_id, status="dead", event_id=event_id)
    await conn.execute(
        """INSERT INTO dead_letters (event_id, tenant_id, workflow_id, reason, attempts, envelope)
           VALUES ($1, $2, $3, 'slack said 500', 20, $4::jsonb)""",
        event_id,
        tenant_id,
        workflow_id,
        envelope.model_dump_json(),
    )
    return event_id
