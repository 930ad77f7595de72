"""Which version a slot belongs to: a replica re-checks with Postgres just before it publishes.

The rule (docs/scheduler.md, "Versions and slots"): slot ``S`` of a workflow
belongs to the version current at ``S``, the highest version of the workflow
created at or before ``S`` (``workflow_versions.created_at``, Postgres time; an
update or a rollback creates a new version row).  ``S`` fires only if it is a
slot of that version's schedule trigger, and its event carries that version.

Each replica plans slots from the version it holds, which may lag behind a
change (the change feed is milliseconds late, or broken until the next
resync).  So before a batch of due slots is published, one query asks Postgres
for the version current at each slot, and :func:`decide` reconciles:

- the held version: fire with it;
- another version, of which ``S`` is a slot: fire with that version;
- another version, of which ``S`` is not a slot (another cadence, no longer a
  schedule, a definition that cannot be scheduled, or one that fires more often
  than ``IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS``): do not fire ``S``;
- no version created by ``S`` (clocks apart): fire with the held version.

Every replica therefore publishes the same version for a slot, whatever it
holds.  When Postgres does not answer within the timeout, the batch fires with
the held versions and checks pause for ``pause_seconds``, so during an outage
at most one batch per pause is late by the timeout; the slot still fires once
(its dedup id has no version), but a slot within the change feed's lag of a
change can then carry either version.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from pydantic import ValidationError

from libs.common.models.workflows import ScheduleTrigger, too_frequent
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.slots import SlotError, rule_for, slot_iso
from services.scheduler.store import ScheduleSpec, ScheduleStore, VersionAtSlot

log = logging.getLogger(__name__)

# Slots per query.
CHECK_BATCH = 1000

Outcome = Literal["held", "changed", "not_a_slot"]


def is_slot_of(trigger: Any, slot: int, *, min_interval_seconds: int) -> bool:
    """Whether ``slot`` is a slot of a stored trigger (``False`` when it is no usable schedule)."""
    try:
        parsed = ScheduleTrigger.model_validate(trigger)
        if too_frequent(parsed, min_interval_seconds) is not None:
            return False
        return rule_for(parsed).next_after(slot - 1) == slot
    except (ValidationError, SlotError):
        return False


def decide(
    held: ScheduleSpec, slot: int, found: VersionAtSlot | None, *, min_interval_seconds: int
) -> tuple[int | None, Outcome]:
    """The version to publish ``slot`` with (``None``: do not fire it), and why."""
    if found is None or found.version == held.version:
        return held.version, "held"
    if is_slot_of(found.trigger, slot, min_interval_seconds=min_interval_seconds):
        return found.version, "changed"
    return None, "not_a_slot"


class VersionCheck:
    def __init__(
        self,
        store: ScheduleStore,
        metrics: SchedulerMetrics,
        *,
        timeout_seconds: float,
        pause_seconds: float,
        min_interval_seconds: int,
    ) -> None:
        self._store = store
        self._min_interval = min_interval_seconds
        self._metrics = metrics
        self._timeout = timeout_seconds
        self._pause = pause_seconds
        self._paused_until = 0.0

    async def resolve(self, due: list[tuple[ScheduleSpec, int]]) -> list[int | None]:
        """Per due ``(spec, slot)``: the version to publish it with, or ``None`` to not fire it."""
        out: list[int | None] = []
        for start in range(0, len(due), CHECK_BATCH):
            out += await self._resolve(due[start : start + CHECK_BATCH])
        return out

    async def _resolve(self, due: list[tuple[ScheduleSpec, int]]) -> list[int | None]:
        loop = asyncio.get_running_loop()
        if loop.time() < self._paused_until:
            self._metrics.version_checks.labels("unavailable").inc(len(due))
            return [spec.version for spec, _ in due]
        try:
            async with asyncio.timeout(self._timeout):
                found = await self._store.versions_at(
                    [(spec.workflow_id, slot) for spec, slot in due], [spec.version for spec, _ in due]
                )
        except Exception as exc:  # noqa: BLE001 - Postgres away or slow: fire with what is held
            self._paused_until = loop.time() + self._pause
            self._metrics.version_checks.labels("unavailable").inc(len(due))
            log.warning(
                "version check failed; firing with the versions held",
                extra={"slots": len(due), "error": type(exc).__name__, "paused_s": self._pause},
            )
            return [spec.version for spec, _ in due]
        out: list[int | None] = []
        for (spec, slot), answer in zip(due, found, strict=True):
            version, outcome = decide(spec, slot, answer, min_interval_seconds=self._min_interval)
            self._metrics.version_checks.labels(outcome).inc()
            if outcome != "held":
                log.debug(
                    "slot belongs to another version than the one held",
                    extra={
                        "workflow_id": str(spec.workflow_id),
                        "slot": slot_iso(slot),
                        "held": spec.version,
                        "current_at_slot": answer.version if answer else None,
                        "outcome": outcome,
                    },
                )
            out.append(version)
        return out
