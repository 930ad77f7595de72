"""Execution rows under leases, parked events and dead letters: batched statements, row-by-row fallback.

**Claim.** One statement per batch takes each event's row (insert it, or take
back a ``failed`` row that has no parked copy waiting, or a ``running`` row
whose lease ran out), counts one attempt, records this replica as the lease
owner until ``now() + lease``, and reads the workflow's state under a share
lock.  A disable (``UPDATE workflows``) therefore either commits first, and
the claim sees it and records ``skipped``, or waits for the claim to commit,
and then sees the claimed row as running.

**Finish.** Writes a try's outcome and releases the lease only while this
replica still holds it; in the same transaction a retry parks the event in
``deferred_events`` and a dead outcome writes its ``dead_letters`` row.

**Bad rows.** A batch that fails on one row's data (a value out of range,
bytes Postgres refuses) is written again row by row, so the other events of
the batch are not retried, and run again, because of it.  A row that can
never be written becomes a dead letter with the reason.  Connection-type
failures are raised to the caller, which retries.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from libs.common.db.errors import is_data_error
from libs.common.db.sanitize import pg_json, pg_json_text, pg_text, pg_text_or_none
from libs.common.models.events import EventEnvelope
from services.executor.batcher import Batcher
from services.executor.decide import ClaimView

log = logging.getLogger(__name__)

CLAIM_SQL = """
WITH t AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::text[], $7::timestamptz[])
         AS t(event_id, tenant_id, workflow_id, workflow_version, trigger, trace_id, scheduled_for)
), w AS (
    SELECT id, tenant_id, is_active, deleted_at IS NOT NULL AS deleted
      FROM workflows WHERE id IN (SELECT workflow_id FROM t) FOR SHARE
), c AS (
    INSERT INTO executions AS e (id, event_id, tenant_id, workflow_id, workflow_version, trigger, status,
                                 attempts, started_at, trace_id, scheduled_for, lease_owner, lease_until)
    SELECT gen_random_uuid(), t.event_id, t.tenant_id, t.workflow_id, t.workflow_version, t.trigger, 'running', 1,
           now(), t.trace_id, t.scheduled_for, $8, now() + make_interval(secs => $9)
      FROM t LEFT JOIN w ON w.id = t.workflow_id
    ON CONFLICT (event_id) DO UPDATE
       SET status = 'running', attempts = e.attempts + 1, started_at = now(), finished_at = NULL,
           trace_id = COALESCE(EXCLUDED.trace_id, e.trace_id), lease_owner = EXCLUDED.lease_owner,
           lease_until = EXCLUDED.lease_until, updated_at = now()
     WHERE (e.status = 'failed' AND NOT EXISTS (
                SELECT 1 FROM deferred_events d WHERE d.event_id = e.event_id AND d.due_at > now()))
        OR (e.status = 'running' AND (e.lease_until IS NULL OR e.lease_until < now()))
    RETURNING e.event_id, e.attempts
)
SELECT t.event_id, c.attempts, p.status AS prev_status,
       extract(epoch FROM p.lease_until - now())::float8 AS lease_left,
       extract(epoch FROM d.due_at - now())::float8 AS parked_left,
       w.tenant_id AS workflow_tenant, coalesce(w.is_active, false) AS is_active,
       coalesce(w.deleted, false) AS deleted
  FROM t
  LEFT JOIN c ON c.event_id = t.event_id
  LEFT JOIN executions p ON p.event_id = t.event_id
  LEFT JOIN deferred_events d ON d.event_id = t.event_id
  LEFT JOIN w ON w.id = t.workflow_id
"""

FINISH_SQL = """
UPDATE executions AS e
   SET status = u.status, finished_at = now(), duration_ms = u.duration_ms, error = u.error,
       output = u.output::jsonb, trace_id = COALESCE(u.trace_id, e.trace_id),
       input = COALESCE(e.input, u.input::jsonb), lease_owner = NULL, lease_until = NULL, updated_at = now()
  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[])
       AS u(event_id, status, duration_ms, error, output, trace_id, input)
 WHERE e.event_id = u.event_id AND e.status = 'running' AND e.lease_owner = $8
RETURNING e.event_id
"""

ATTEMPTS_SQL = """
INSERT INTO execution_attempts (event_id, attempt, started_at, outcome, error, http_status, duration_ms)
SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::text[], $5::text[], $6::int[], $7::int[])
"""

PARK_SQL = """
INSERT INTO deferred_events (event_id, tenant_id, subject, data, headers, due_at, deferrals, reason, park_id)
SELECT p.event_id, p.tenant_id, p.subject, p.data, p.headers::jsonb, now() + make_interval(secs => p.secs),
       p.deferrals, p.reason, gen_random_uuid()
  FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::text[], $6::float8[], $7::int[], $8::text[])
       AS p(event_id, tenant_id, subject, data, headers, secs, deferrals, reason)
ON CONFLICT (event_id) DO UPDATE
   SET tenant_id = EXCLUDED.tenant_id, subject = EXCLUDED.subject, data = EXCLUDED.data,
       headers = EXCLUDED.headers, due_at = EXCLUDED.due_at, deferrals = EXCLUDED.deferrals,
       reason = EXCLUDED.reason, park_id = EXCLUDED.park_id, parked_at = now()
"""

DEAD_SQL = """
INSERT INTO dead_letters (event_id, tenant_id, workflow_id, reason, attempts, envelope, raw, traceparent)
SELECT d.event_id, d.tenant_id, d.workflow_id, d.reason, d.attempts, d.envelope::jsonb, d.raw, d.traceparent
  FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::text[], $7::bytea[], $8::text[])
       AS d(event_id, tenant_id, workflow_id, reason, attempts, envelope, raw, traceparent)
ON CONFLICT (event_id) DO UPDATE
   SET reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, envelope = EXCLUDED.envelope,
       raw = EXCLUDED.raw, traceparent = EXCLUDED.traceparent, dead_at = now(), replayed_at = NULL
"""

SET_ASIDE_SQL = """
UPDATE executions
   SET status = 'dead', finished_at = now(), error = $2, output = NULL, lease_owner = NULL, lease_until = NULL,
       updated_at = now()
 WHERE event_id = $1 AND status = 'running' AND lease_owner = $3
RETURNING event_id
"""

RENEW_SQL = """
UPDATE executions SET lease_until = now() + make_interval(secs => $2)
 WHERE event_id = ANY($1::uuid[]) AND status = 'running' AND lease_owner = $3
"""

RELEASE_SQL = """
UPDATE executions SET lease_owner = NULL, lease_until = NULL
 WHERE event_id = ANY($1::uuid[]) AND status = 'running' AND lease_owner = $2
"""

# Another scheduled run of the workflow that is running and started first (ties broken by event id,
# so of two runs claimed together exactly one goes ahead).
OVERLAP_SQL = """
SELECT EXISTS (SELECT 1 FROM executions o JOIN executions me ON me.event_id = $2
                WHERE o.workflow_id = $1 AND o.trigger = 'schedule' AND o.status = 'running'
                  AND o.event_id <> $2 AND (o.started_at, o.event_id) < (me.started_at, me.event_id))
"""

# Checkpoints of multi-step workflows (one row per step that ran): read at the start of a try, and each
# written before the next step starts, only while this replica holds the event's lease.
STEPS_SQL = """
SELECT step_id, status, attempts, continued, output, error FROM execution_steps WHERE event_id = $1
"""
CHECKPOINT_SQL = """
INSERT INTO execution_steps AS s (event_id, step_id, position, status, attempts, continued, started_at,
                                  finished_at, duration_ms, error, output)
SELECT $1, $2, $3, $4, $5, $6, $7, now(), $8, $9, $10::text::jsonb
 WHERE EXISTS (SELECT 1 FROM executions e WHERE e.event_id = $1 AND e.status = 'running' AND e.lease_owner = $11)
ON CONFLICT (event_id, step_id) DO UPDATE
   SET position = EXCLUDED.position, status = EXCLUDED.status, attempts = EXCLUDED.attempts,
       continued = EXCLUDED.continued, started_at = EXCLUDED.started_at, finished_at = now(),
       duration_ms = EXCLUDED.duration_ms, error = EXCLUDED.error, output = EXCLUDED.output
RETURNING s.step_id
"""

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Parcel:
    """What it takes to put an event back on EVENTS: its subject, its bytes as received, trace headers."""

    subject: str
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Parking:
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    parcel: Parcel
    seconds: float
    reason: str  # retry | breaker | fairness | lease | storage
    deferrals: int = 0


@dataclass(frozen=True, slots=True)
class Tried:
    """One try of the action, for the history: when it started, and what the target answered."""

    started_at: datetime
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    event: EventEnvelope
    status: str  # succeeded | failed | dead | skipped
    parcel: Parcel
    attempts: int = 0
    duration_ms: int | None = None
    error: str | None = None
    output: Any = None
    trace_id: str | None = None
    park: Parking | None = None  # a failed try: when the event comes back
    tried: Tried | None = None  # the action was tried (or refused by its breaker): a history row
    input: Any = None  # the payload as stored (masked, capped); kept once per event


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One step's outcome, as kept: ``status`` succeeded, filtered, failed or dead (see 0320_execution_steps)."""

    step_id: str
    status: str
    attempts: int
    output: Any = None
    error: str | None = None
    continued: bool = False  # failed, and passed over (continue_on_error)
    position: int = 0
    started_at: datetime | None = None
    duration_ms: int | None = None

    @property
    def settled(self) -> bool:
        """Never runs again: it succeeded, or failed and the workflow went on without it."""
        return self.status == "succeeded" or (self.status == "failed" and self.continued)


@dataclass(frozen=True, slots=True)
class Written:
    """How a finish ended: ``status`` is what the row now says (``dead`` when the outcome was set aside)."""

    stored: bool  # False: this replica no longer held the lease; nothing was written
    status: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Unclaimable:
    """The claim itself cannot be written for this event (its data is refused): dead-letter it."""

    reason: str


class ExecutionStore:
    def __init__(self, pool: asyncpg.Pool, *, owner: str, lease_seconds: float, max_items: int, linger: float) -> None:
        self._pool = pool
        self.owner = owner
        self._lease = lease_seconds
        self._claims: Batcher[tuple[EventEnvelope, str | None], ClaimView | Unclaimable] = Batcher(
            "claim", self._claim_batch, max_items=max_items, linger=linger
        )
        self._finishes: Batcher[Outcome, Written] = Batcher(
            "finish", self._finish_batch, max_items=max_items, linger=linger
        )
        self._parks: Batcher[Parking, None] = Batcher("park", self._park_batch, max_items=max_items, linger=linger)

    async def claim(self, event: EventEnvelope, trace_id: str | None) -> ClaimView | Unclaimable:
        return await self._claims.submit((event, trace_id))

    async def finish(self, outcome: Outcome) -> Written:
        return await self._finishes.submit(outcome)

    async def park(self, parking: Parking) -> None:
        await self._parks.submit(parking)

    async def renew(self, event_ids: list[uuid.UUID]) -> None:
        await self._pool.execute(RENEW_SQL, event_ids, self._lease, self.owner)

    async def release(self, event_ids: list[uuid.UUID]) -> int:
        """Give up this replica's leases (it stops working on these events), so another may claim at once.

        Returns how many it held: an event whose outcome is already written holds none.
        """
        status: str = await self._pool.execute(RELEASE_SQL, event_ids, self.owner)
        return int(status.rsplit(" ", 1)[-1])

    async def dead_letter_raw(
        self, event_id: uuid.UUID, tenant_id: uuid.UUID, workflow_id: uuid.UUID, reason: str, raw: bytes
    ) -> None:
        """A message that is not a valid envelope: kept with its bytes and the reason."""
        await self._pool.execute(
            DEAD_SQL, [event_id], [tenant_id], [workflow_id], [pg_text(reason)], [0], [None], [raw], [None]
        )

    async def checkpoints(self, event_id: uuid.UUID) -> dict[str, Checkpoint]:
        """The steps of the event that ran, by step id."""
        rows = await self._pool.fetch(STEPS_SQL, event_id)
        return {
            r["step_id"]: Checkpoint(
                r["step_id"], r["status"], r["attempts"], r["output"], r["error"], bool(r["continued"])
            )
            for r in rows
        }

    async def checkpoint(self, event_id: uuid.UUID, step: Checkpoint) -> bool:
        """Write one step's outcome; False when this replica no longer holds the event (nothing written)."""
        output = None if step.output is None else pg_json(step.output)
        row = await self._pool.fetchval(
            CHECKPOINT_SQL,
            event_id,
            step.step_id,
            step.position,
            step.status,
            step.attempts,
            step.continued,
            step.started_at,
            step.duration_ms,
            pg_text_or_none(step.error),
            output,
            self.owner,
        )
        return row is not None

    async def overlapping_run(self, workflow_id: uuid.UUID, event_id: uuid.UUID) -> bool:
        return bool(await self._pool.fetchval(OVERLAP_SQL, workflow_id, event_id))

    async def close(self) -> None:
        await self._claims.close()
        await self._finishes.close()
        await self._parks.close()

    # --- claims ---------------------------------------------------------------------------------------

    async def _claim_batch(self, items: list[tuple[EventEnvelope, str | None]]) -> list[ClaimView | Unclaimable]:
        unique: dict[uuid.UUID, tuple[EventEnvelope, str | None]] = {}
        for event, trace_id in items:
            unique.setdefault(event.event_id, (event, trace_id))
        try:
            views: dict[uuid.UUID, ClaimView | Unclaimable] = dict(await self._claim_rows(list(unique.values())))
        except Exception as exc:
            if not is_data_error(exc) or len(unique) == 1:
                if is_data_error(exc):
                    return [Unclaimable(_reason("claim", exc)) for _ in items]
                raise
            views = {}
            for one in unique.values():  # one event's bad data stays that event's problem
                try:
                    views.update(await self._claim_rows([one]))
                except Exception as row_exc:
                    if not is_data_error(row_exc):
                        raise
                    views[one[0].event_id] = Unclaimable(_reason("claim", row_exc))
        results: list[ClaimView | Unclaimable] = []
        first: set[uuid.UUID] = set()
        for event, _ in items:
            if event.event_id in first:  # the same event twice in one batch: the second one waits
                results.append(ClaimView(None, "running", 1.0, None, None, False, False))
                continue
            first.add(event.event_id)
            results.append(views[event.event_id])
        return results

    async def _claim_rows(self, items: list[tuple[EventEnvelope, str | None]]) -> list[tuple[uuid.UUID, ClaimView]]:
        rows = await self._pool.fetch(
            CLAIM_SQL,
            [event.event_id for event, _ in items],
            [event.tenant_id for event, _ in items],
            [event.workflow_id for event, _ in items],
            [event.workflow_version for event, _ in items],
            [event.trigger.value for event, _ in items],
            [trace_id for _, trace_id in items],
            [event.scheduled_for for event, _ in items],
            self.owner,
            self._lease,
        )
        return [
            (
                row["event_id"],
                ClaimView(
                    attempt=row["attempts"],
                    prev_status=row["prev_status"],
                    lease_left=row["lease_left"],
                    parked_left=row["parked_left"],
                    workflow_tenant=row["workflow_tenant"],
                    workflow_active=bool(row["is_active"]),
                    workflow_deleted=bool(row["deleted"]),
                ),
            )
            for row in rows
        ]

    # --- finishes -------------------------------------------------------------------------------------

    async def _finish_batch(self, items: list[Outcome]) -> list[Written]:
        latest = {o.event.event_id: o for o in items}
        try:
            done = await self._finish_rows(list(latest.values()))
        except Exception as exc:
            if not is_data_error(exc):
                raise
            done = {}
            for outcome in latest.values():
                try:
                    done.update(await self._finish_rows([outcome]))
                except Exception as row_exc:
                    if not is_data_error(row_exc):
                        raise
                    done[outcome.event.event_id] = await self._set_aside(outcome, row_exc)
        return [done[o.event.event_id] for o in items]

    async def _finish_rows(self, outcomes: list[Outcome]) -> dict[uuid.UUID, Written]:
        cols = [
            [o.event.event_id for o in outcomes],
            [o.status for o in outcomes],
            [o.duration_ms for o in outcomes],
            [pg_text_or_none(o.error) for o in outcomes],
            [None if o.output is None else pg_json(o.output) for o in outcomes],
            [o.trace_id for o in outcomes],
            [None if o.input is None else pg_json(o.input) for o in outcomes],
        ]
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(FINISH_SQL, *cols, self.owner)
            stored = {row["event_id"] for row in rows}
            tried = [o for o in outcomes if o.tried is not None and o.event.event_id in stored]
            if tried:
                await conn.execute(ATTEMPTS_SQL, *_attempt_columns(tried))
            parks = [o.park for o in outcomes if o.park is not None and o.event.event_id in stored]
            if parks:
                await conn.execute(PARK_SQL, *_park_columns(parks))
            dead = [o for o in outcomes if o.status == "dead" and o.event.event_id in stored]
            if dead:
                await conn.execute(DEAD_SQL, *_dead_columns(dead))
        return {o.event.event_id: Written(o.event.event_id in stored, o.status, o.error) for o in outcomes}

    async def _set_aside(self, outcome: Outcome, exc: BaseException) -> Written:
        """The outcome cannot be stored: the row becomes ``dead`` with the reason, the event a dead letter."""
        reason = _reason("outcome", exc)
        log.error(
            "execution outcome could not be stored; dead-lettered",
            extra={"event_id": str(outcome.event.event_id), "error": reason},
        )
        async with self._pool.acquire() as conn, conn.transaction():
            ok = await conn.fetchval(SET_ASIDE_SQL, outcome.event.event_id, reason, self.owner)
            if ok is None:
                return Written(False, outcome.status, outcome.error)
            dead = Outcome(
                event=outcome.event, status="dead", parcel=outcome.parcel, attempts=outcome.attempts, error=reason
            )
            try:
                async with conn.transaction():
                    await conn.execute(DEAD_SQL, *_dead_columns([dead]))
            except Exception as dl_exc:
                if not is_data_error(dl_exc):
                    raise
                await conn.execute(DEAD_SQL, *_dead_columns([dead], raw=True))
        return Written(True, "dead", reason)

    # --- parking --------------------------------------------------------------------------------------

    async def _park_batch(self, items: list[Parking]) -> list[None]:
        latest = {p.event_id: p for p in items}
        try:
            await self._pool.execute(PARK_SQL, *_park_columns(list(latest.values())))
        except Exception as exc:
            if not is_data_error(exc) or len(latest) == 1:
                raise
            for parking in latest.values():
                await self._pool.execute(PARK_SQL, *_park_columns([parking]))
        return [None] * len(items)


def _attempt_columns(tried: list[Outcome]) -> list[list[Any]]:
    return [
        [o.event.event_id for o in tried],
        [o.attempts for o in tried],
        [o.tried.started_at if o.tried else None for o in tried],
        [o.status for o in tried],
        [pg_text_or_none(o.error) for o in tried],
        [o.tried.http_status if o.tried else None for o in tried],
        [o.duration_ms for o in tried],
    ]


def _park_columns(parks: list[Parking]) -> list[list[Any]]:
    return [
        [p.event_id for p in parks],
        [p.tenant_id for p in parks],
        [p.parcel.subject for p in parks],
        [p.parcel.data for p in parks],
        [pg_json(p.parcel.headers) for p in parks],
        [max(0.0, p.seconds) for p in parks],
        [p.deferrals for p in parks],
        [p.reason for p in parks],
    ]


def _dead_columns(dead: list[Outcome], *, raw: bool = False) -> list[list[Any]]:
    """``raw``: keep the envelope as the bytes received instead of JSON (when the JSON is refused)."""
    return [
        [o.event.event_id for o in dead],
        [o.event.tenant_id for o in dead],
        [o.event.workflow_id for o in dead],
        [pg_text(o.error or "dead") for o in dead],
        [o.attempts for o in dead],
        [None if raw else pg_json_text(o.event.model_dump_json()) for o in dead],
        [o.parcel.data if raw else None for o in dead],
        [_traceparent(o.parcel.headers) for o in dead],
    ]


def _traceparent(headers: dict[str, str]) -> str | None:
    """The parcel's W3C traceparent, when it is one (55 characters); anything else is not kept."""
    value = headers.get("traceparent")
    return value if value is not None and len(value) == 55 and value.isascii() else None


def _reason(what: str, exc: BaseException) -> str:
    detail = pg_text(str(exc))[: MAX_ERROR_CHARS // 2]
    return f"{what} could not be stored: {type(exc).__name__}: {detail}"
