"""Execution rows and dead letters, written in batches (one statement per batch).

``claim`` takes an event's row idempotently (insert, or take a non-final
row back, counting one more attempt).  ``finish`` writes a try's outcome; a
``dead`` outcome writes the ``dead_letters`` row in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from libs.common.models.events import EventEnvelope
from services.executor.batcher import Batcher

CLAIM_SQL = """
INSERT INTO executions AS e (id, event_id, tenant_id, workflow_id, workflow_version, trigger, status,
                             attempts, started_at, trace_id, scheduled_for)
SELECT gen_random_uuid(), t.event_id, t.tenant_id, t.workflow_id, t.workflow_version, t.trigger, 'running', 1,
       now(), t.trace_id, t.scheduled_for
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::text[], $7::timestamptz[])
     AS t(event_id, tenant_id, workflow_id, workflow_version, trigger, trace_id, scheduled_for)
ON CONFLICT (event_id) DO UPDATE
   SET status = 'running', attempts = e.attempts + 1, started_at = now(), finished_at = NULL,
       trace_id = COALESCE(EXCLUDED.trace_id, e.trace_id), updated_at = now()
 WHERE e.status IN ('running', 'failed')
RETURNING e.event_id, e.attempts
"""

FINISH_SQL = """
UPDATE executions AS e
   SET status = u.status, attempts = GREATEST(0, e.attempts + u.delta), finished_at = now(),
       duration_ms = u.duration_ms, error = u.error, output = u.output::jsonb,
       trace_id = COALESCE(u.trace_id, e.trace_id), updated_at = now()
  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[], $7::text[])
       AS u(event_id, status, delta, duration_ms, error, output, trace_id)
 WHERE e.event_id = u.event_id AND e.status IN ('running', 'failed')
"""

DEAD_SQL = """
INSERT INTO dead_letters (event_id, tenant_id, workflow_id, reason, attempts, envelope)
SELECT d.event_id, d.tenant_id, d.workflow_id, d.reason, d.attempts, d.envelope::jsonb
  FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::text[])
       AS d(event_id, tenant_id, workflow_id, reason, attempts, envelope)
ON CONFLICT (event_id) DO UPDATE
   SET reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, envelope = EXCLUDED.envelope,
       dead_at = now(), replayed_at = NULL
"""

# Another scheduled run of the workflow that is running and started first (ties broken by event id,
# so of two runs claimed together exactly one goes ahead).
OVERLAP_SQL = """
SELECT EXISTS (SELECT 1 FROM executions o JOIN executions me ON me.event_id = $2
                WHERE o.workflow_id = $1 AND o.trigger = 'schedule' AND o.status = 'running'
                  AND o.event_id <> $2 AND (o.started_at, o.event_id) < (me.started_at, me.event_id))
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """``attempts`` is the try number now running; ``None`` when the row is final (ack and stop)."""

    attempts: int | None
    busy: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    event: EventEnvelope
    status: str  # succeeded | failed | dead | skipped
    attempts: int
    duration_ms: int | None = None
    error: str | None = None
    output: Any = None
    trace_id: str | None = None
    attempts_delta: int = 0


class ExecutionStore:
    def __init__(self, pool: asyncpg.Pool, *, max_items: int, linger: float) -> None:
        self._pool = pool
        self._claims: Batcher[tuple[EventEnvelope, str | None], Claim] = Batcher(
            "claim", self._claim_batch, max_items=max_items, linger=linger)
        self._finishes: Batcher[Outcome, None] = Batcher(
            "finish", self._finish_batch, max_items=max_items, linger=linger)

    async def claim(self, event: EventEnvelope, trace_id: str | None) -> Claim:
        return await self._claims.submit((event, trace_id))

    async def finish(self, outcome: Outcome) -> None:
        await self._finishes.submit(outcome)

    async def overlapping_run(self, workflow_id: uuid.UUID, event_id: uuid.UUID) -> bool:
        return bool(await self._pool.fetchval(OVERLAP_SQL, workflow_id, event_id))

    async def close(self) -> None:
        await self._claims.close()
        await self._finishes.close()

    async def _claim_batch(self, items: list[tuple[EventEnvelope, str | None]]) -> list[Claim]:
        seen: set[uuid.UUID] = set()
        unique: list[tuple[EventEnvelope, str | None]] = []
        for event, trace_id in items:
            if event.event_id not in seen:
                seen.add(event.event_id)
                unique.append((event, trace_id))
        cols: list[list[Any]] = [[] for _ in range(7)]
        for event, trace_id in unique:
            scheduled: datetime | None = event.scheduled_for
            for col, value in zip(cols, (event.event_id, event.tenant_id, event.workflow_id,
                                         event.workflow_version, event.trigger.value, trace_id, scheduled),
                                  strict=True):
                col.append(value)
        rows = await self._pool.fetch(CLAIM_SQL, *cols)
        claimed = {row["event_id"]: int(row["attempts"]) for row in rows}
        results: list[Claim] = []
        first: set[uuid.UUID] = set()
        for event, _ in items:
            if event.event_id in first:
                results.append(Claim(attempts=None, busy=True))  # the same event twice in one batch
                continue
            first.add(event.event_id)
            results.append(Claim(attempts=claimed.get(event.event_id)))
        return results

    async def _finish_batch(self, items: list[Outcome]) -> list[None]:
        latest: dict[uuid.UUID, Outcome] = {o.event.event_id: o for o in items}
        outcomes = list(latest.values())
        cols: list[list[Any]] = [[] for _ in range(7)]
        for o in outcomes:
            output = None if o.output is None else orjson.dumps(o.output, default=str).decode()
            for col, value in zip(cols, (o.event.event_id, o.status, o.attempts_delta, o.duration_ms, o.error,
                                         output, o.trace_id), strict=True):
                col.append(value)
        dead = [o for o in outcomes if o.status == "dead"]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(FINISH_SQL, *cols)
            if dead:
                await conn.execute(
                    DEAD_SQL,
                    [o.event.event_id for o in dead], [o.event.tenant_id for o in dead],
                    [o.event.workflow_id for o in dead], [o.error or "dead" for o in dead],
                    [o.attempts for o in dead], [o.event.model_dump_json() for o in dead],
                )
        return [None] * len(items)
