"""The scheduler in-process against real NATS and Postgres, with a manual clock.

Covers catch-up after downtime (acceptance 3), live disable / enable / update
through the change feed (acceptance 4) and isolation of a broken definition
(acceptance 5).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope
from services.scheduler.runtime import SchedulerRuntime
from tests.helpers.factories import add_version, create_tenant, create_workflow
from tests.helpers.scheduler import T0, at, publish_change, stored_events
from tests.helpers.scheduler import schedule_definition as definition
from tests.helpers.wait import contains, equals, wait_until
from tests.helpers.wall_clock import ManualClock


async def events(bus: Bus, workflow_id: uuid.UUID) -> list[EventEnvelope]:
    """Every event of ``workflow_id`` in the EVENTS stream, in stream order."""
    found = await stored_events(bus, workflow_id)
    for headers, env in found:
        assert headers["Nats-Msg-Id"] == env.dedup_key
    return [env for _, env in found]


async def slots_fired(bus: Bus, workflow_id: uuid.UUID) -> list[str]:
    return [e.scheduled_for.strftime("%H:%M:%S") for e in await events(bus, workflow_id) if e.scheduled_for]


@dataclass
class Scene:
    """What each test starts from: a new tenant, a manual clock at 12:00:30, and the bus, the database and the
    ``schedulers`` fixture its replicas run on."""

    bus: Bus
    db: asyncpg.Connection
    schedulers: Callable[..., Awaitable[SchedulerRuntime]]
    tenant: uuid.UUID
    clock: ManualClock

    async def workflow(self, **trigger: Any) -> uuid.UUID:
        """A schedule of the tenant with this trigger, at version 1."""
        return await create_workflow(self.db, self.tenant, definition(**trigger))

    async def replica(self, **options: Any) -> SchedulerRuntime:
        return await self.schedulers(self.clock, **options)

    async def change(self, wf: uuid.UUID, version: int, change: str, **flags: bool) -> None:
        await publish_change(self.bus, self.tenant, wf, version, change, **flags)

    async def error(self, wf: uuid.UUID) -> str | None:
        error: str | None = await self.db.fetchval("SELECT schedule_error FROM workflows WHERE id = $1", wf)
        return error

    async def fires(self, wf: uuid.UUID, slots: list[str], message: str) -> None:
        """Wait until the slots ``wf`` fired are exactly ``slots``."""
        await wait_until(lambda: equals(slots_fired(self.bus, wf), slots), message=message)

    async def first_slot_fired(self, **trigger: Any) -> tuple[uuid.UUID, SchedulerRuntime]:
        """An every-minute schedule last changed at 12:00:30, and a replica that fired its 12:01 slot."""
        wf = await self.workflow(interval_seconds=60, **trigger)
        await self.db.execute("UPDATE workflows SET updated_at = $2 WHERE id = $1", wf, T0)
        rt = await self.replica()
        self.clock.set(at(1))
        await self.fires(wf, ["12:01:00"], "first slot")
        return wf, rt


@pytest.fixture
async def scene(bus: Bus, db: asyncpg.Connection, schedulers: Callable[..., Awaitable[SchedulerRuntime]]) -> Scene:
    return Scene(bus, db, schedulers, await create_tenant(db), ManualClock(T0))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("skip", ["12:01:00", "12:06:00"]),
        ("all", ["12:01:00", "12:02:00", "12:03:00", "12:04:00", "12:05:00", "12:06:00"]),
    ],
)
async def test_missed_slots_after_downtime_follow_the_catchup_policy(
    scene: Scene, policy: str, expected: list[str]
) -> None:
    db = scene.db
    wf, first = await scene.first_slot_fired(catchup=policy)
    await wait_until(
        lambda: db.fetchval("SELECT last_slot FROM scheduler_state WHERE workflow_id = $1", wf),
        message="progress saved",
    )
    await first.stop()

    scene.clock.set(at(6))  # down for 5 slots: 12:02 .. 12:06
    await scene.replica()
    await scene.fires(wf, expected, f"{policy} catch-up fires")

    skipped = await db.fetch(
        "SELECT scheduled_for, error, trigger, workflow_version FROM executions "
        "WHERE workflow_id = $1 AND status = 'skipped' ORDER BY scheduled_for",
        wf,
    )
    if policy == "skip":
        assert [r["scheduled_for"].strftime("%H:%M:%S") for r in skipped] == [
            "12:02:00",
            "12:03:00",
            "12:04:00",
            "12:05:00",
        ]
        assert all("catchup=skip" in r["error"] and r["trigger"] == "schedule" for r in skipped)
    else:
        assert skipped == []
    assert await slots_fired(scene.bus, wf) == expected  # nothing more, nothing twice


async def test_disable_stops_within_a_second_enable_resumes_and_update_applies_at_next_slot(scene: Scene) -> None:
    bus, db = scene.bus, scene.db
    wf = await scene.workflow(interval_seconds=60)
    control = await scene.workflow(interval_seconds=60)
    rt = await scene.replica()

    async def tick(minute: int) -> None:
        """Move to just after 12:<minute>:00 and wait until the control workflow fired that slot."""
        scene.clock.set(datetime(2026, 5, 1, 12, minute, 0, 500_000, tzinfo=UTC))
        await wait_until(
            lambda: contains(slots_fired(bus, control), f"12:{minute:02d}:00"),
            message=f"control fired 12:{minute:02d}",
        )

    await tick(1)
    assert await slots_fired(bus, wf) == ["12:01:00"]

    # Disable: the heap drops it within 1 s of the change being published (no resync involved).
    await db.execute("UPDATE workflows SET is_active = false WHERE id = $1", wf)
    await scene.change(wf, 1, "disabled", is_active=False)
    await wait_until(
        lambda: wf not in rt.engine.workflow_ids(), timeout=1.0, interval=0.01, message="schedule unloaded"
    )
    await tick(2)
    await tick(3)
    assert await slots_fired(bus, wf) == ["12:01:00"]

    # Re-enable: fires again from the next slot, without catching up the disabled period.
    await db.execute("UPDATE workflows SET is_active = true WHERE id = $1", wf)
    await scene.change(wf, 1, "enabled")
    await wait_until(lambda: wf in rt.engine.workflow_ids(), timeout=1.0, message="schedule reloaded")
    await tick(4)
    await scene.fires(wf, ["12:01:00", "12:04:00"], "resumed")

    # Update the schedule: every 5 minutes from now on; 12:05 is the next slot of the new rule.
    version = await add_version(db, wf, definition(cron="*/5 * * * *", timezone="Europe/Paris"))
    await scene.change(wf, version, "updated")
    await wait_until(
        lambda: (spec := rt.engine.spec_of(wf)) is not None and spec.version == version,
        timeout=1.0,
        message="new version loaded",
    )
    await tick(5)
    await scene.fires(wf, ["12:01:00", "12:04:00", "12:05:00"], "fired at the next slot of the new rule")
    await tick(6)
    latest = (await events(bus, wf))[-1]
    assert latest.workflow_version == version and latest.dedup_key.endswith(":2026-05-01T12:05:00Z")
    assert await slots_fired(bus, wf) == ["12:01:00", "12:04:00", "12:05:00"]

    # Delete: gone as fast as a disable.
    await db.execute("UPDATE workflows SET deleted_at = now(), is_active = false WHERE id = $1", wf)
    await scene.change(wf, version, "deleted", is_active=False, deleted=True)
    await wait_until(lambda: wf not in rt.engine.workflow_ids(), timeout=1.0, message="deleted unloaded")


async def test_a_broken_definition_is_marked_and_the_others_keep_firing(scene: Scene) -> None:
    broken = await scene.workflow(cron="61 * * * *")  # stored without validation
    never = await scene.workflow(cron="0 0 31 2 *")  # valid syntax, no such date
    healthy = await scene.workflow(interval_seconds=60)
    rt = await scene.replica()

    error = await wait_until(lambda: scene.error(broken), message="error stored")
    assert "61 * * * *" in error
    assert await scene.error(never)
    assert await scene.error(healthy) is None
    assert rt.engine.workflow_ids() == {healthy}

    scene.clock.set(at(1))
    await scene.fires(healthy, ["12:01:00"], "healthy fires")

    # Fixing the definition clears the error and the schedule starts firing.
    version = await add_version(scene.db, broken, definition(cron="*/2 * * * *"))
    await scene.change(broken, version, "updated")
    await wait_until(lambda: equals(scene.error(broken), None), message="error cleared")
    scene.clock.set(at(2))
    await scene.fires(broken, ["12:02:00"], "fixed schedule fires")

    # Breaking a running schedule stops only that one.
    version = await add_version(scene.db, healthy, definition(cron="* * * *"))
    await scene.change(healthy, version, "updated")
    await wait_until(lambda: scene.error(healthy), message="error stored on update")
    scene.clock.set(at(4))
    await scene.fires(broken, ["12:02:00", "12:04:00"], "others go on")
    assert await slots_fired(scene.bus, healthy) == ["12:01:00", "12:02:00"]


async def test_periodic_resync_catches_a_change_the_feed_never_announced(scene: Scene) -> None:
    rt = await scene.replica(resync_interval_seconds=0.2)
    wf = await scene.workflow(interval_seconds=60)  # no change published
    await wait_until(lambda: wf in rt.engine.workflow_ids(), timeout=5, message="loaded by resync")
    scene.clock.set(at(1))
    await scene.fires(wf, ["12:01:00"], "fires")
    await scene.db.execute("UPDATE workflows SET is_active = false WHERE id = $1", wf)
    await wait_until(lambda: wf not in rt.engine.workflow_ids(), timeout=5, message="unloaded by resync")


async def test_a_workflow_created_while_no_scheduler_ran_catches_up_from_its_creation(scene: Scene) -> None:
    wf = await scene.workflow(interval_seconds=60)
    await scene.db.execute("UPDATE workflows SET updated_at = $2 WHERE id = $1", wf, T0)  # created at 12:00:30
    scene.clock.set(at(5))
    await scene.replica()
    await scene.fires(wf, ["12:05:00"], "latest slot fired")
    await wait_until(
        lambda: scene.db.fetchval(
            "SELECT count(*) = 4 FROM executions WHERE workflow_id = $1 AND status = 'skipped'", wf
        ),
        message="4 skipped rows",
    )


async def test_re_enabling_while_running_does_not_catch_up_the_disabled_time_after_a_restart(scene: Scene) -> None:
    db = scene.db
    wf, rt = await scene.first_slot_fired()
    await db.execute("UPDATE workflows SET is_active = false WHERE id = $1", wf)
    await scene.change(wf, 1, "disabled", is_active=False)
    await wait_until(lambda: wf not in rt.engine.workflow_ids(), timeout=1.0, message="unloaded")
    scene.clock.set(at(5, 30))
    await db.execute("UPDATE workflows SET is_active = true, updated_at = $2 WHERE id = $1", wf, scene.clock.now())
    await scene.change(wf, 1, "enabled")
    await wait_until(
        lambda: db.fetchval(
            "SELECT last_slot = '2026-05-01T12:05:30Z' FROM scheduler_state WHERE workflow_id = $1", wf
        ),
        message="enable saved as progress",
    )
    await rt.stop()

    scene.clock.set(at(6))
    await scene.replica()
    await scene.fires(wf, ["12:01:00", "12:06:00"], "next slot only")
    assert await db.fetchval("SELECT count(*) FROM executions WHERE workflow_id = $1", wf) == 0


async def test_slots_before_a_change_made_while_down_are_not_caught_up(scene: Scene) -> None:
    wf, first = await scene.first_slot_fired()
    await first.stop()
    # While no scheduler runs: disabled, then enabled again at 12:04:30 (the gateway bumps updated_at).
    await scene.db.execute("UPDATE workflows SET updated_at = $2 WHERE id = $1", wf, at(4, 30))
    scene.clock.set(at(6))
    await scene.replica()
    await scene.fires(wf, ["12:01:00", "12:06:00"], "latest fired")
    await wait_until(
        lambda: scene.db.fetchval(
            "SELECT array_agg(to_char(scheduled_for AT TIME ZONE 'UTC', 'HH24:MI')) = '{12:05}' "
            "FROM executions WHERE workflow_id = $1 AND status = 'skipped'",
            wf,
        ),
        message="only 12:05 skipped",
    )
