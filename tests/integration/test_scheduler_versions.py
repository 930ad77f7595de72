"""Versions and slots, in-process against real NATS and Postgres with a manual clock.

Two replicas, one of which has not seen a version change (no change is
published; the fresh one reloads on demand, the stale one's resync is an hour
away): each slot gives one event, carrying the version current at the slot,
and a slot that is not a slot of that version does not fire, whichever
replica gets there.  A replica that loads a new version after one of its
slots has passed still fires that slot.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from libs.common.bus import Bus
from services.scheduler.runtime import SchedulerRuntime
from tests.helpers.factories import add_version, create_tenant, create_workflow
from tests.helpers.scheduler import T0, at, stored_events
from tests.helpers.scheduler import schedule_definition as definition
from tests.helpers.wait import equals, wait_until
from tests.helpers.wall_clock import ManualClock


@dataclass
class Replica:
    rt: SchedulerRuntime
    registry: CollectorRegistry

    def checks(self, result: str) -> float:
        """``ipaas_scheduler_version_checks_total{result}`` of this replica."""
        value = self.registry.get_sample_value("ipaas_scheduler_version_checks_total", {"result": result})
        return value or 0.0


@pytest.fixture
def replicas(schedulers: Callable[..., Any]) -> Callable[..., Any]:
    """Factory: a replica in this process (``schedulers``) with a metrics registry of its own."""

    async def start(clock: ManualClock) -> Replica:
        registry = CollectorRegistry()
        return Replica(await schedulers(clock, registry), registry)

    return start


async def fired(bus: Bus, workflow_id: uuid.UUID) -> list[tuple[str, int]]:
    """(slot HH:MM:SS, version) of every event of the workflow, checking its message id."""
    out: list[tuple[str, int]] = []
    for headers, env in await stored_events(bus, workflow_id):
        assert env.scheduled_for is not None
        assert (
            headers.get("Nats-Msg-Id") == env.dedup_key == f"sched:{workflow_id}:{env.scheduled_for:%Y-%m-%dT%H:%M:%SZ}"
        )
        out.append((env.scheduled_for.strftime("%H:%M:%S"), env.workflow_version))
    return out


async def new_version(db: asyncpg.Connection, wf: uuid.UUID, created_at: datetime, name: str, **trigger: Any) -> int:
    """A new current version, as a PUT or a rollback makes it, created at ``created_at``."""
    version = await add_version(db, wf, definition(name, **trigger))
    await db.execute(
        "UPDATE workflow_versions SET created_at = $3 WHERE workflow_id = $1 AND version = $2", wf, version, created_at
    )
    await db.execute("UPDATE workflows SET updated_at = $2 WHERE id = $1", wf, created_at)
    return version


async def schedule_made_at_noon(db: asyncpg.Connection, name: str, **trigger: Any) -> uuid.UUID:
    """A new tenant's schedule whose version 1 was created at 12:00:00."""
    wf = await create_workflow(db, await create_tenant(db), definition(name, **trigger))
    await db.execute("UPDATE workflow_versions SET created_at = $2 WHERE workflow_id = $1", wf, at(0, 0))
    await db.execute("UPDATE workflows SET updated_at = $2 WHERE id = $1", wf, at(0, 0))
    return wf


def _version(replica: Replica, wf: uuid.UUID) -> int | None:
    spec = replica.rt.engine.spec_of(wf)
    return spec.version if spec is not None else None


async def test_replicas_holding_different_versions_fire_each_slot_once_with_the_version_current_then(
    bus: Bus,
    db: asyncpg.Connection,
    replicas: Callable[..., Any],
) -> None:
    wf = await schedule_made_at_noon(db, "v1", interval_seconds=60)
    clock = ManualClock(T0)
    fresh, stale = await replicas(clock), await replicas(clock)
    clock.set(at(1))
    await wait_until(lambda: equals(fired(bus, wf), [("12:01:00", 1)]), message="12:01 fired")

    # v2, 100 ms before the 12:02 slot: the fresh replica loads it, the stale one does not.
    await new_version(db, wf, at(1, 59.9), "v2", interval_seconds=60)
    await fresh.rt.sync.resync(startup=False)
    assert _version(fresh, wf) == 2 and _version(stale, wf) == 1
    clock.set(at(2))
    await wait_until(lambda: stale.checks("changed") >= 1, message="the stale replica checked 12:02")
    await wait_until(lambda: equals(fired(bus, wf), [("12:01:00", 1), ("12:02:00", 2)]), message="12:02 as v2")

    # v3 fires every 2 minutes: 12:03 is no slot of it, even for the replica still planning every minute.
    await new_version(db, wf, at(2, 59.9), "v3", interval_seconds=120)
    await fresh.rt.sync.resync(startup=False)
    clock.set(at(3))
    await wait_until(lambda: stale.checks("not_a_slot") >= 1, message="the stale replica dropped 12:03")
    clock.set(at(4))
    await wait_until(
        lambda: equals(fired(bus, wf), [("12:01:00", 1), ("12:02:00", 2), ("12:04:00", 3)]),
        message="12:04 as v3, nothing at 12:03",
    )

    # The stale replica alone: a rollback-style v4 it never loads still decides 12:05.
    await fresh.rt.stop()
    await new_version(db, wf, at(4, 30), "v4 (= v1)", interval_seconds=60)
    clock.set(at(5))
    await wait_until(
        lambda: equals(fired(bus, wf), [("12:01:00", 1), ("12:02:00", 2), ("12:04:00", 3), ("12:05:00", 4)]),
        message="12:05 as v4 from the stale replica",
    )
    assert _version(stale, wf) == 1
    await wait_until(
        lambda: db.fetchval("SELECT last_slot = $2 FROM scheduler_state WHERE workflow_id = $1", wf, at(5, 0)),
        message="progress",
    )


async def test_a_version_loaded_after_its_first_slot_passed_still_fires_that_slot(
    bus: Bus,
    db: asyncpg.Connection,
    replicas: Callable[..., Any],
) -> None:
    wf = await schedule_made_at_noon(db, "every 2 min", interval_seconds=120)
    clock = ManualClock(T0)
    replica = await replicas(clock)
    clock.set(at(2))
    await wait_until(lambda: equals(fired(bus, wf), [("12:02:00", 1)]), message="12:02 fired")

    # Every minute from 12:02:59.5; this replica hears of it only after 12:03 has passed.
    await new_version(db, wf, at(2, 59.5), "every min", interval_seconds=60)
    clock.set(at(3, 1.0))
    await replica.rt.sync.resync(startup=False)
    await wait_until(lambda: equals(fired(bus, wf), [("12:02:00", 1), ("12:03:00", 2)]), message="12:03 fired late")
    clock.set(at(4))
    await wait_until(
        lambda: equals(fired(bus, wf), [("12:02:00", 1), ("12:03:00", 2), ("12:04:00", 2)]), message="12:04 on time"
    )
