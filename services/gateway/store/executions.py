"""Executions and dead letters, read for the API; the DLQ replay transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from opentelemetry import propagate, trace

from libs.common.db.sanitize import pg_text
from libs.common.http.errors import Conflict, NotFound
from libs.common.models.events import events_subject
from libs.common.models.queries import ExecutionQuery
from services.gateway.outbox import add_message

REPLAY_LINK = {"ipaas.link.reason": "dead letter replay"}

MAX_ATTEMPTS_SHOWN = 1000  # a detail lists at most this many tries (a replayed event may have many)
_EXEC_COLUMNS = """id, event_id, workflow_id, workflow_version, trigger, status, attempts, started_at,
                   finished_at, duration_ms, error, trace_id, created_at"""


# A replay from the start: the event's step checkpoints go (only the events of this tenant's executions).
FORGET_STEPS_SQL = "DELETE FROM execution_steps WHERE event_id = ANY($1::uuid[])"
# A replay marks its dead letters ($1, at $2) and makes their executions (of tenant $2) non-final again.
MARK_REPLAYED_SQL = "UPDATE dead_letters SET replayed_at = $2 WHERE event_id = ANY($1::uuid[])"
REOPEN_SQL = """
UPDATE executions SET status = 'failed', attempts = 0, updated_at = now()
 WHERE event_id = ANY($1::uuid[]) AND tenant_id = $2
"""
STEPS_SQL = """
SELECT step_id AS id, status, attempts, continued, started_at, finished_at, duration_ms, error, output
  FROM execution_steps WHERE event_id = $1 ORDER BY position
"""


def like_pattern(text: str) -> str:
    """``%text%`` for ILIKE, with ``%``, ``_`` and ``\\`` in ``text`` matching themselves."""
    escaped = pg_text(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def execution_out(row: asyncpg.Record) -> dict[str, Any]:
    """The row as the API shows it. Output and error are returned as stored: the executor masked them
    when it wrote them (``ActionRunner.safe_output``, ``safe_error``), so reads cost no masking."""
    out = dict(row)
    out.pop("created_at", None)
    return out


def add_filters(conditions: list[str], args: list[Any], filters: Iterable[tuple[str, Any]], offset: int = 0) -> None:
    """Each ``(condition, value)`` whose value is not None: the condition, its ``{}`` the value's ``$n``."""
    for condition, value in filters:
        if value is not None:
            args.append(value)
            conditions.append(condition.format(f"${len(args) + offset}"))


async def list_executions(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, query: ExecutionQuery, *, limit: int
) -> list[asyncpg.Record]:
    conditions = ["tenant_id = $1"]
    args: list[Any] = [tenant_id, limit + 1]
    filters: tuple[tuple[str, Any], ...] = (
        ("workflow_id = {}", query.workflow_id),
        ("event_id = {}", query.event_id),
        ("status = {}", query.status.value if query.status is not None else None),
        ("trigger = {}", query.trigger.value if query.trigger is not None else None),
        ("created_at >= {}", query.since),
        ("created_at < {}", query.until),
    )
    add_filters(conditions, args, filters)
    if query.after is not None:
        args.extend(query.after)
        conditions.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    sql = (
        f"SELECT {_EXEC_COLUMNS} FROM executions WHERE {' AND '.join(conditions)} "
        "ORDER BY created_at DESC, id DESC LIMIT $2"
    )
    return list(await pool.fetch(sql, *args))


async def get_execution(pool: asyncpg.Pool, tenant_id: uuid.UUID, execution_id: uuid.UUID) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT {_EXEC_COLUMNS}, output, input FROM executions WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            execution_id,
        )
        if row is None:
            raise NotFound("execution not found")
        tries = await conn.fetch(
            """SELECT attempt, started_at, finished_at, outcome, error, http_status, duration_ms
                 FROM execution_attempts WHERE event_id = $1 ORDER BY id LIMIT $2""",
            row["event_id"],
            MAX_ATTEMPTS_SHOWN,
        )
        steps = await conn.fetch(STEPS_SQL, row["event_id"])
    out = execution_out(row)
    out["attempt_history"] = [dict(t) for t in tries]
    if steps:
        out["steps"] = [dict(s) for s in steps]
    return out


async def list_dead_letters(
    pool: asyncpg.Pool,
    tenant_id: uuid.UUID,
    *,
    workflow_id: uuid.UUID | None,
    include_replayed: bool,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[asyncpg.Record]:
    conditions = ["d.tenant_id = $1"]
    args: list[Any] = [tenant_id, limit + 1]
    if not include_replayed:
        conditions.append("d.replayed_at IS NULL")
    filters: tuple[tuple[str, Any], ...] = (
        ("d.workflow_id = {}", workflow_id),
        ("d.reason ILIKE {}", like_pattern(reason) if reason is not None else None),
        ("d.dead_at >= {}", since),
        ("d.dead_at < {}", until),
    )
    add_filters(conditions, args, filters)
    if before is not None:
        args.extend(before)
        conditions.append(f"(d.dead_at, d.event_id) < (${len(args) - 1}, ${len(args)})")
    sql = (
        "SELECT d.event_id, d.workflow_id, d.reason, d.attempts, d.dead_at, d.replayed_at, "
        "e.input AS payload, e.error AS last_error FROM dead_letters d "
        "LEFT JOIN executions e ON e.event_id = d.event_id AND e.tenant_id = d.tenant_id "
        f"WHERE {' AND '.join(conditions)} ORDER BY d.dead_at DESC, d.event_id DESC LIMIT $2"
    )
    return list(await pool.fetch(sql, *args))


def link_to_dead_trace(traceparent: str | None) -> None:
    """The replay starts a new trace (this request's); its span links to the trace the letter died in."""
    if not traceparent:
        return
    dead = trace.get_current_span(propagate.extract({"traceparent": traceparent})).get_span_context()
    if dead.is_valid:
        trace.get_current_span().add_link(dead, REPLAY_LINK)


async def replay(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, event_id: uuid.UUID, *, from_start: bool = False
) -> dict[str, Any]:
    """Mark the dead letter replayed, make its execution non-final (its attempts counted from zero again,
    so the replay gets the workflow's whole retry policy), and queue the stored envelope.

    A multi-step workflow resumes at the step that died (its checkpoints are kept); ``from_start``
    deletes them, so every step runs again.

    All three in one transaction: the envelope goes out through the outbox, so
    an accepted replay is never lost, and the executor cannot see the message
    before the execution row is ``failed`` (non-final) again.
    """
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """SELECT workflow_id, envelope, replayed_at, traceparent FROM dead_letters
               WHERE tenant_id = $1 AND event_id = $2 FOR UPDATE""",
            tenant_id,
            event_id,
        )
        if row is None:
            raise NotFound("dead letter not found")
        if row["replayed_at"] is not None:
            raise Conflict(
                "this dead letter was already replayed",
                code="already_replayed",
                details={"replayed_at": row["replayed_at"].isoformat()},
            )
        if row["envelope"] is None:
            raise Conflict(
                "this dead letter is a message that was not a valid event; it cannot be replayed", code="not_replayable"
            )
        await conn.execute(MARK_REPLAYED_SQL, [event_id], now)
        link_to_dead_trace(row["traceparent"])
        await conn.execute(REOPEN_SQL, [event_id], tenant_id)
        if from_start:
            await conn.execute(FORGET_STEPS_SQL, [event_id])
        envelope: dict[str, Any] = row["envelope"]
        subject = events_subject(tenant_id, row["workflow_id"])
        await add_message(conn, subject, envelope, msg_id=f"replay:{event_id}:{int(now.timestamp() * 1000)}")
    return {"event_id": event_id, "replayed_at": now}
