"""The scheduler in-process against real NATS and Postgres, with a manual clock.

Covers catch-up after downtime (acceptance 3), live disable / enable / update
through the change feed (acceptance 4), isolation of a broken definition
(acceptance 5) and of a stored schedule faster than the minimum, and versions
and slots.

Versions and slots: two replicas, one of which has not seen a version change (no change is
published; the fresh one reloads on demand, the stale one's resync is an hour
away): each slot gives one event, carrying the version current at the slot,
and a slot that is not a slot of that version does not fire, whichever
replica gets there.  A replica that loads a new version after one of its
slots has passed still fires that slot.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope
from libs.common.settings import ScheduleSettings
from services.scheduler.runtime import SchedulerRuntime
from tests.helpers.factories import add_version, create_tenant, create_workflow
from tests.helpers.gateway_app import running_gateway
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


SlotReader = Callable[[Bus, uuid.UUID], Awaitable[list[Any]]]


@dataclass
class Scene:
    """What each test starts from: a new tenant, a manual clock at 12:00:30, and the bus, the database and the
    ``schedulers`` fixture its replicas run on."""

    bus: Bus
    db: asyncpg.Connection
    schedulers: Callable[..., Awaitable[SchedulerRuntime]]
    tenant: uuid.UUID
    clock: ManualClock

    async def workflow(self, name: str = "tick", **trigger: Any) -> uuid.UUID:
        """A schedule of the tenant with this trigger, at version 1."""
        return await create_workflow(self.db, self.tenant, definition(name, **trigger))

    async def replica(self, **options: Any) -> SchedulerRuntime:
        return await self.schedulers(self.clock, **options)

    async def change(self, wf: uuid.UUID, version: int, change: str, **flags: bool) -> None:
        await publish_change(self.bus, self.tenant, wf, version, change, **flags)

    async def error(self, wf: uuid.UUID) -> str | None:
        error: str | None = await self.db.fetchval("SELECT schedule_error FROM workflows WHERE id = $1", wf)
        return error

    async def fires(self, wf: uuid.UUID, slots: list[Any], message: str, read: SlotReader = slots_fired) -> None:
        """Wait until the slots ``wf`` fired (as ``read`` reads them) are exactly ``slots``."""
        await wait_until(lambda: equals(read(self.bus, wf), slots), message=message)

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
    ("policy", "expected", "skipped_slots"),
    [
        ("skip", ["12:01:00", "12:06:00"], ["12:02:00", "12:03:00", "12:04:00", "12:05:00"]),
        ("all", ["12:01:00", "12:02:00", "12:03:00", "12:04:00", "12:05:00", "12:06:00"], []),
    ],
)
async def test_missed_slots_after_downtime_follow_the_catchup_policy(
    scene: Scene, policy: str, expected: list[str], skipped_slots: list[str]
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
    assert [r["scheduled_for"].strftime("%H:%M:%S") for r in skipped] == skipped_slots
    assert all("catchup=skip" in r["error"] and r["trigger"] == "schedule" for r in skipped)
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


async def fired_by_workflow(bus: Bus) -> dict[uuid.UUID, list[str]]:
    """Slots in EVENTS per workflow."""
    out: dict[uuid.UUID, list[str]] = {}
    for _, env in await stored_events(bus):
        if env.scheduled_for is not None:
            out.setdefault(env.workflow_id, []).append(env.scheduled_for.strftime("%H:%M:%S"))
    return out


async def test_a_stored_schedule_faster_than_the_minimum_does_not_fire_and_says_why(
    scene: Scene, database_url: str, nats_url: str
) -> None:
    """A stored schedule faster than the minimum (saved before it was raised, or written around the API): the
    scheduler does not fire it, records why in ``schedule_error`` (shown by the API), and every other schedule
    keeps firing."""
    bus = scene.bus
    every_second = await scene.workflow(cron="* * * * * *")
    every_five = await scene.workflow(interval_seconds=5)
    healthy = await scene.workflow(interval_seconds=60)
    rt = await scene.replica(schedule=ScheduleSettings(min_interval_seconds=10))
    assert rt.engine.workflow_ids() == {healthy}
    error = await wait_until(lambda: scene.error(every_second), message="error stored")
    assert error == "the schedule fires 1 s apart at its fastest; the shortest interval allowed is 10 s"
    assert await wait_until(lambda: scene.error(every_five), message="error stored")
    assert await scene.error(healthy) is None

    scene.clock.set(at(1))
    await wait_until(lambda: contains(fired_by_workflow(bus), healthy), message="the healthy schedule fires")
    assert set(await fired_by_workflow(bus)) == {healthy}  # 30 seconds passed: nothing of the fast ones

    # The API shows the reason, as for any schedule that cannot run.
    async with running_gateway(database_url, nats_url) as gw:
        resp = await gw.client.get(f"/api/workflows/{every_five}", headers=gw.auth(scene.tenant))
        assert (await resp.json())["data"]["schedule_error"] == (
            "the schedule fires 5 s apart at its fastest; the shortest interval allowed is 10 s"
        )

    # Slowing it down (a new version) clears the error and it fires.
    version = await add_version(scene.db, every_five, definition(interval_seconds=10))
    await scene.change(every_five, version, "updated")
    await wait_until(lambda: equals(scene.error(every_five), None), message="error cleared")
    scene.clock.set(at(1, 10.5))
    await wait_until(lambda: contains(fired_by_workflow(bus), every_five), message="the slowed-down schedule fires")
    assert every_second not in await fired_by_workflow(bus)


@dataclass
class Replica:
    rt: SchedulerRuntime
    registry: CollectorRegistry

    def checks(self, result: str) -> float:
        """``ipaas_scheduler_version_checks_total{result}`` of this replica."""
        value = self.registry.get_sample_value("ipaas_scheduler_version_checks_total", {"result": result})
        return value or 0.0

    def version(self, wf: uuid.UUID) -> int | None:
        spec = self.rt.engine.spec_of(wf)
        return spec.version if spec is not None else None


async def replica(scene: Scene) -> Replica:
    """A replica of the scene with a metrics registry of its own."""
    registry = CollectorRegistry()
    return Replica(await scene.replica(registry=registry), registry)


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


async def dated(db: asyncpg.Connection, wf: uuid.UUID, version: int, created_at: datetime) -> None:
    """Version ``version`` of ``wf`` created at ``created_at``, the workflow's last change."""
    await db.execute(
        "UPDATE workflow_versions SET created_at = $3 WHERE workflow_id = $1 AND version = $2", wf, version, created_at
    )
    await db.execute("UPDATE workflows SET updated_at = $2 WHERE id = $1", wf, created_at)


async def new_version(db: asyncpg.Connection, wf: uuid.UUID, created_at: datetime, name: str, **trigger: Any) -> int:
    """A new current version, as a PUT or a rollback makes it, created at ``created_at``."""
    version = await add_version(db, wf, definition(name, **trigger))
    await dated(db, wf, version, created_at)
    return version


async def made_at_noon(scene: Scene, name: str, **trigger: Any) -> uuid.UUID:
    """A schedule whose version 1 was created at 12:00:00."""
    wf = await scene.workflow(name, **trigger)
    await dated(scene.db, wf, 1, at(0, 0))
    return wf


async def test_replicas_holding_different_versions_fire_each_slot_once_with_the_version_current_then(
    scene: Scene,
) -> None:
    db, clock = scene.db, scene.clock
    wf = await made_at_noon(scene, "v1", interval_seconds=60)
    fresh, stale = await replica(scene), await replica(scene)
    clock.set(at(1))
    await scene.fires(wf, [("12:01:00", 1)], "12:01 fired", fired)

    # v2, 100 ms before the 12:02 slot: the fresh replica loads it, the stale one does not.
    await new_version(db, wf, at(1, 59.9), "v2", interval_seconds=60)
    await fresh.rt.sync.resync(startup=False)
    assert fresh.version(wf) == 2 and stale.version(wf) == 1
    clock.set(at(2))
    await wait_until(lambda: stale.checks("changed") >= 1, message="the stale replica checked 12:02")
    await scene.fires(wf, [("12:01:00", 1), ("12:02:00", 2)], "12:02 as v2", fired)

    # v3 fires every 2 minutes: 12:03 is no slot of it, even for the replica still planning every minute.
    await new_version(db, wf, at(2, 59.9), "v3", interval_seconds=120)
    await fresh.rt.sync.resync(startup=False)
    clock.set(at(3))
    await wait_until(lambda: stale.checks("not_a_slot") >= 1, message="the stale replica dropped 12:03")
    clock.set(at(4))
    await scene.fires(wf, [("12:01:00", 1), ("12:02:00", 2), ("12:04:00", 3)], "12:04 as v3, nothing at 12:03", fired)

    # The stale replica alone: a rollback-style v4 it never loads still decides 12:05.
    await fresh.rt.stop()
    await new_version(db, wf, at(4, 30), "v4 (= v1)", interval_seconds=60)
    clock.set(at(5))
    slots = [("12:01:00", 1), ("12:02:00", 2), ("12:04:00", 3), ("12:05:00", 4)]
    await scene.fires(wf, slots, "12:05 as v4 from the stale replica", fired)
    assert stale.version(wf) == 1
    await wait_until(
        lambda: db.fetchval("SELECT last_slot = $2 FROM scheduler_state WHERE workflow_id = $1", wf, at(5, 0)),
        message="progress",
    )


async def test_a_version_loaded_after_its_first_slot_passed_still_fires_that_slot(scene: Scene) -> None:
    clock = scene.clock
    wf = await made_at_noon(scene, "every 2 min", interval_seconds=120)
    one = await replica(scene)
    clock.set(at(2))
    await scene.fires(wf, [("12:02:00", 1)], "12:02 fired", fired)

    # Every minute from 12:02:59.5; this replica hears of it only after 12:03 has passed.
    await new_version(scene.db, wf, at(2, 59.5), "every min", interval_seconds=60)
    clock.set(at(3, 1.0))
    await one.rt.sync.resync(startup=False)
    await scene.fires(wf, [("12:02:00", 1), ("12:03:00", 2)], "12:03 fired late", fired)
    clock.set(at(4))
    await scene.fires(wf, [("12:02:00", 1), ("12:03:00", 2), ("12:04:00", 2)], "12:04 on time", fired)
