"""Bulk DLQ replay jobs: accept one (its dead letters taken at once), and work through them in batches.

A job's dead letters are written to ``replay_job_items`` in the transaction
that creates it, so its ``total`` is fixed when the client gets the 202.
:func:`replay_batch` takes the oldest running job that no other replica is
working on (``FOR UPDATE SKIP LOCKED``), and in one transaction replays up to
``batch`` of its items exactly as a single replay does (the dead letter
marked, the execution ``failed`` again with its attempts counted from zero,
the envelope queued in the outbox with ``Nats-Msg-Id: replay:<event>:<job>``),
marks them done and adds them to the progress.  A crash loses nothing and
repeats nothing: the batch commits whole or not at all, and the next replica
carries on from the items still open.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from libs.common.http.errors import NotFound, ValidationFailed
from libs.common.models.api import DlqReplayRequest
from libs.common.models.events import events_subject
from services.gateway.store.executions import FORGET_STEPS_SQL, MARK_REPLAYED_SQL, REOPEN_SQL, add_filters, like_pattern

_JOB_COLUMNS = "id, state, total, done, skipped, created_at, finished_at"

TAKE_JOB_SQL = """
SELECT id, tenant_id, coalesce((filter->>'from_start')::boolean, false) AS from_start
  FROM replay_jobs WHERE state = 'running' ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
"""
TAKE_ITEMS_SQL = """
SELECT event_id FROM replay_job_items WHERE job_id = $1 AND done_at IS NULL ORDER BY event_id LIMIT $2
"""
LETTERS_SQL = """
SELECT event_id, workflow_id, envelope FROM dead_letters
 WHERE tenant_id = $1 AND event_id = ANY($2::uuid[]) AND replayed_at IS NULL AND envelope IS NOT NULL
 ORDER BY event_id FOR UPDATE
"""
# The pool encodes jsonb parameters (libs/common/db/pool.py): the envelope goes as the stored object.
OUTBOX_SQL = "INSERT INTO outbox (subject, msg_id, payload) VALUES ($1, $2, $3::jsonb)"
PROGRESS_SQL = """
UPDATE replay_jobs
   SET done = done + $2, skipped = skipped + $3, updated_at = now(),
       state = CASE WHEN done + $2 >= total THEN 'done' ELSE state END,
       finished_at = CASE WHEN done + $2 >= total THEN now() ELSE finished_at END
 WHERE id = $1
"""


# Finished jobs (and their items) are deleted this long after they finished.
JOB_RETENTION_DAYS = 7
FORGET_SQL = """
DELETE FROM replay_jobs WHERE id IN (
    SELECT id FROM replay_jobs WHERE state = 'done' AND finished_at < now() - make_interval(days => $1) LIMIT $2)
"""


async def forget_old_jobs(pool: asyncpg.Pool, batch: int) -> int:
    status: str = await pool.execute(FORGET_SQL, JOB_RETENTION_DAYS, batch)
    return int(status.rsplit(" ", 1)[-1])


def job_out(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    total, done = out["total"], out["done"]
    out["percent"] = 100.0 if total == 0 else round(100.0 * done / total, 1)
    return out


def _conditions(request: DlqReplayRequest) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``dead_letters`` (after ``$1`` job id, ``$2`` tenant, ``$3`` limit) and their values."""
    conditions = ["tenant_id = $2", "replayed_at IS NULL", "envelope IS NOT NULL"]
    args: list[Any] = []
    filters: tuple[tuple[str, Any], ...] = (
        ("workflow_id = {}", request.workflow_id),
        ("reason ILIKE {}", like_pattern(request.reason) if request.reason is not None else None),
        ("dead_at >= {}", request.since),
        ("dead_at < {}", request.until),
        ("event_id = ANY({}::uuid[])", request.event_ids),
    )
    add_filters(conditions, args, filters, 3)
    return conditions, args


async def create_job(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, request: DlqReplayRequest, *, max_events: int
) -> dict[str, Any]:
    """The job, with its dead letters taken now; more than ``max_events`` of them is a 422."""
    job_id = uuid.uuid4()
    conditions, args = _conditions(request)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO replay_jobs (id, tenant_id, filter, total) VALUES ($1, $2, $3::jsonb, 0)",
            job_id,
            tenant_id,
            request.model_dump(mode="json", exclude_unset=True),
        )
        status: str = await conn.execute(
            f"""INSERT INTO replay_job_items (job_id, event_id)
                SELECT $1, event_id FROM dead_letters WHERE {" AND ".join(conditions)} LIMIT $3""",
            job_id,
            tenant_id,
            max_events + 1,
            *args,
        )
        total = int(status.rsplit(" ", 1)[-1])
        if total > max_events:
            detail = {"field": "body", "message": f"matches more than {max_events}", "type": "too_many_dead_letters"}
            raise ValidationFailed(f"more than {max_events} dead letters match: narrow the filter", details=[detail])
        row = await conn.fetchrow(
            f"""UPDATE replay_jobs SET total = $2,
                       state = CASE WHEN $2 = 0 THEN 'done' ELSE 'running' END,
                       finished_at = CASE WHEN $2 = 0 THEN now() END
                 WHERE id = $1 RETURNING {_JOB_COLUMNS}""",
            job_id,
            total,
        )
    assert row is not None
    return job_out(row)


async def get_job(pool: asyncpg.Pool, tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    row = await pool.fetchrow(
        f"SELECT {_JOB_COLUMNS} FROM replay_jobs WHERE tenant_id = $1 AND id = $2", tenant_id, job_id
    )
    if row is None:
        raise NotFound("replay job not found")
    return job_out(row)


async def replay_batch(pool: asyncpg.Pool, batch: int) -> int:
    """Replay up to ``batch`` items of one running job; the number handled (0: no job has work)."""
    async with pool.acquire() as conn, conn.transaction():
        job = await conn.fetchrow(TAKE_JOB_SQL)
        if job is None:
            return 0
        job_id, tenant_id = job["id"], job["tenant_id"]
        items = [r["event_id"] for r in await conn.fetch(TAKE_ITEMS_SQL, job_id, batch)]
        if not items:  # counted already (a job whose total was reached is done): close it
            await conn.execute("UPDATE replay_jobs SET state = 'done', finished_at = now() WHERE id = $1", job_id)
            return 0
        letters = await conn.fetch(LETTERS_SQL, tenant_id, items)
        replayed = [r["event_id"] for r in letters]
        now = datetime.now(UTC)
        if replayed:
            await conn.execute(MARK_REPLAYED_SQL, replayed, now)
            await conn.execute(REOPEN_SQL, replayed, tenant_id)
            if job["from_start"]:
                await conn.execute(FORGET_STEPS_SQL, replayed)
            await conn.executemany(
                OUTBOX_SQL,
                [
                    (events_subject(tenant_id, r["workflow_id"]), f"replay:{r['event_id']}:{job_id}", r["envelope"])
                    for r in letters
                ],
            )
        await conn.execute(
            """UPDATE replay_job_items SET done_at = $3, replayed = (event_id = ANY($4::uuid[]))
                WHERE job_id = $1 AND event_id = ANY($2::uuid[])""",
            job_id,
            items,
            now,
            replayed,
        )
        await conn.execute(PROGRESS_SQL, job_id, len(items), len(items) - len(replayed))
        return len(items)
