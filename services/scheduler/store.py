"""Postgres access of the scheduler: schedule definitions, errors and progress.

A stored version is usable only if it parses, its slots can be computed, and it
fires no more often than ``IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS`` (a version saved
before the minimum was raised, or written around the API); otherwise
:func:`parse_row` returns the reason, which becomes ``workflows.schedule_error``.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from libs.common.models.workflows import ScheduleTrigger, too_frequent
from services.scheduler.slots import SlotError, SlotRule, rule_for, to_slot

log = logging.getLogger(__name__)

_SELECT = """
SELECT w.id, w.tenant_id, w.current_version, w.is_active, w.deleted_at, w.schedule_error, w.updated_at,
       v.definition, v.created_at AS version_created_at, s.last_slot
FROM workflows w
JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version
LEFT JOIN scheduler_state s ON s.workflow_id = w.id
"""
_ACTIVE_SCHEDULES = (
    _SELECT + "WHERE w.is_active AND w.deleted_at IS NULL AND v.definition->'trigger'->>'type' = 'schedule'"
)
_ONE = _SELECT + "WHERE w.id = $1"
# Per (workflow, slot): the version current at that instant, i.e. the highest version
# created at or before it (an update or a rollback creates a new version row).
# The trigger is sent back only for a version other than the one the replica holds (the usual
# answer is the held version, and decoding ten thousand triggers per minute is not free).
_VERSIONS_AT = """
SELECT t.i, v.version, CASE WHEN v.version IS DISTINCT FROM t.held THEN v.definition->'trigger' END AS trigger
FROM unnest($1::uuid[], $2::timestamptz[], $3::int[]) WITH ORDINALITY AS t(workflow_id, slot, held, i)
JOIN LATERAL (
    SELECT version, definition FROM workflow_versions
    WHERE workflow_id = t.workflow_id AND created_at <= t.slot
    ORDER BY version DESC LIMIT 1
) v ON true
"""


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """One active schedule at one version, ready for the timer heap."""

    workflow_id: uuid.UUID
    tenant_id: uuid.UUID
    version: int
    trigger: ScheduleTrigger
    rule: SlotRule
    effective_from: int  # the first slot this version governs: its created_at, rounded up to a second


@dataclass(frozen=True, slots=True)
class VersionAtSlot:
    """What Postgres says about one slot: the version current then, and that version's trigger."""

    version: int
    trigger: Any  # the stored JSON, not validated (None when it was not asked for: the held version)


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    """A row read back: either a usable spec, or the error that makes it unusable."""

    workflow_id: uuid.UUID
    spec: ScheduleSpec | None
    error: str | None
    stored_error: str | None
    last_slot: int | None  # saved progress
    changed_at: int  # the workflow's updated_at
    is_schedule: bool


def parse_row(row: asyncpg.Record, *, min_interval_seconds: int) -> StoredSchedule:
    definition: Any = row["definition"]
    trigger: Any = definition.get("trigger") if isinstance(definition, dict) else None
    is_schedule = isinstance(trigger, dict) and trigger.get("type") == "schedule"
    wants = bool(row["is_active"]) and row["deleted_at"] is None and is_schedule
    last: datetime | None = row["last_slot"]
    spec: ScheduleSpec | None = None
    error: str | None = None
    if wants:
        try:
            parsed = ScheduleTrigger.model_validate(trigger)
            error = too_frequent(parsed, min_interval_seconds)
            if error is None:
                rule = rule_for(parsed)  # one that can never fire raises SlotError when the engine plans it
                spec = ScheduleSpec(
                    row["id"],
                    row["tenant_id"],
                    int(row["current_version"]),
                    parsed,
                    rule,
                    effective_from=math.ceil(row["version_created_at"].timestamp()),
                )
        except ValidationError as exc:
            error = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'trigger'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
        except SlotError as exc:
            error = str(exc)
    return StoredSchedule(
        workflow_id=row["id"],
        spec=spec,
        error=error,
        stored_error=row["schedule_error"],
        last_slot=to_slot(last) if last is not None else None,
        changed_at=to_slot(row["updated_at"]),
        is_schedule=is_schedule,
    )


class ScheduleStore:
    def __init__(self, pool: asyncpg.Pool, *, min_interval_seconds: int) -> None:
        self.pool = pool
        self.min_interval_seconds = min_interval_seconds

    def parse(self, row: asyncpg.Record) -> StoredSchedule:
        return parse_row(row, min_interval_seconds=self.min_interval_seconds)

    async def load_active(self) -> list[asyncpg.Record]:
        """Rows of every active schedule workflow (parse each with :meth:`parse`)."""
        rows: list[asyncpg.Record] = await self.pool.fetch(_ACTIVE_SCHEDULES)
        return rows

    async def load_one(self, workflow_id: uuid.UUID) -> StoredSchedule | None:
        row = await self.pool.fetchrow(_ONE, workflow_id)
        return self.parse(row) if row is not None else None

    async def set_error(self, workflow_id: uuid.UUID, error: str | None) -> None:
        """Write (or clear, with ``None``) ``workflows.schedule_error``; a no-op when unchanged."""
        await self.pool.execute(
            "UPDATE workflows SET schedule_error = $2 WHERE id = $1 AND schedule_error IS DISTINCT FROM $2",
            workflow_id,
            error,
        )

    async def versions_at(
        self, slots: list[tuple[uuid.UUID, int]], held: list[int | None] | None = None
    ) -> list[VersionAtSlot | None]:
        """For each ``(workflow_id, slot)``, the version current at the slot (``None``: none existed yet).

        ``held``: per slot, the version the caller holds; the trigger of a version equal to it is
        not read (``VersionAtSlot.trigger`` is ``None`` then).
        """
        found: list[VersionAtSlot | None] = [None] * len(slots)
        if not slots:
            return found
        ids = [wf for wf, _ in slots]
        moments = [datetime.fromtimestamp(slot, tz=UTC) for _, slot in slots]
        versions = held if held is not None else [None] * len(slots)
        rows = await self.pool.fetch(_VERSIONS_AT, ids, moments, versions)
        for row in rows:
            found[int(row["i"]) - 1] = VersionAtSlot(int(row["version"]), row["trigger"])
        return found

    async def save_progress(self, progress: dict[uuid.UUID, int]) -> None:
        if not progress:
            return
        ids = list(progress)
        slots = [datetime.fromtimestamp(progress[i], tz=UTC) for i in ids]
        await self.pool.execute(
            """INSERT INTO scheduler_state (workflow_id, last_slot)
               SELECT * FROM unnest($1::uuid[], $2::timestamptz[])
               ON CONFLICT (workflow_id) DO UPDATE
               SET last_slot = GREATEST(scheduler_state.last_slot, EXCLUDED.last_slot), updated_at = now()""",
            ids,
            slots,
        )

    async def record_skipped(self, rows: list[SkippedSlot]) -> None:
        """One ``skipped`` execution per slot; idempotent on ``event_id``."""
        if not rows:
            return
        await self.pool.executemany(
            """INSERT INTO executions (id, event_id, tenant_id, workflow_id, workflow_version, trigger,
                                       status, attempts, finished_at, error, scheduled_for)
               VALUES ($1, $2, $3, $4, $5, 'schedule', 'skipped', 0, now(), $6, $7)
               ON CONFLICT (event_id) DO NOTHING""",
            [
                (
                    uuid.uuid4(),
                    r.event_id,
                    r.tenant_id,
                    r.workflow_id,
                    r.version,
                    r.reason,
                    datetime.fromtimestamp(r.slot, tz=UTC),
                )
                for r in rows
            ],
        )


@dataclass(frozen=True, slots=True)
class SkippedSlot:
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    workflow_id: uuid.UUID
    version: int
    slot: int
    reason: str
