"""A stored schedule faster than the minimum (saved before it was raised, or written around the API):
the scheduler does not fire it, records why in ``schedule_error`` (shown by the API), and every other
schedule keeps firing.  Real NATS and Postgres, the scheduler in-process with a manual clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from libs.common.bus import Bus
from libs.common.settings import ScheduleSettings
from tests.helpers.factories import add_version, create_tenant, create_workflow
from tests.helpers.gateway_app import running_gateway
from tests.helpers.scheduler import T0, at, publish_change, stored_events
from tests.helpers.scheduler import schedule_definition as definition
from tests.helpers.wait import contains, equals, wait_until
from tests.helpers.wall_clock import ManualClock


async def fired(bus: Bus) -> dict[uuid.UUID, list[str]]:
    """Slots in EVENTS per workflow."""
    out: dict[uuid.UUID, list[str]] = {}
    for _, env in await stored_events(bus):
        if env.scheduled_for is not None:
            out.setdefault(env.workflow_id, []).append(env.scheduled_for.strftime("%H:%M:%S"))
    return out


async def schedule_error(db: asyncpg.Connection, workflow_id: uuid.UUID) -> str | None:
    error: str | None = await db.fetchval("SELECT schedule_error FROM workflows WHERE id = $1", workflow_id)
    return error


async def test_a_stored_schedule_faster_than_the_minimum_does_not_fire_and_says_why(
    bus: Bus,
    db: asyncpg.Connection,
    schedulers: Callable[..., Any],
    database_url: str,
    nats_url: str,
) -> None:
    tenant = await create_tenant(db)
    every_second = await create_workflow(db, tenant, definition(cron="* * * * * *"))
    every_five = await create_workflow(db, tenant, definition(interval_seconds=5))
    healthy = await create_workflow(db, tenant, definition(interval_seconds=60))
    clock = ManualClock(T0)
    rt = await schedulers(clock, schedule=ScheduleSettings(min_interval_seconds=10))
    assert rt.engine.workflow_ids() == {healthy}
    error = await wait_until(lambda: schedule_error(db, every_second), message="error stored")
    assert error == "the schedule fires 1 s apart at its fastest; the shortest interval allowed is 10 s"
    assert await wait_until(lambda: schedule_error(db, every_five), message="error stored")
    assert await schedule_error(db, healthy) is None

    clock.set(at(1))
    await wait_until(lambda: contains(fired(bus), healthy), message="the healthy schedule fires")
    assert set(await fired(bus)) == {healthy}  # 30 seconds passed: nothing of the fast ones

    # The API shows the reason, as for any schedule that cannot run.
    async with running_gateway(database_url, nats_url) as gw:
        resp = await gw.client.get(f"/api/workflows/{every_five}", headers=gw.auth(tenant))
        assert (await resp.json())["data"]["schedule_error"] == (
            "the schedule fires 5 s apart at its fastest; the shortest interval allowed is 10 s"
        )

    # Slowing it down (a new version) clears the error and it fires.
    version = await add_version(db, every_five, definition(interval_seconds=10))
    await publish_change(bus, tenant, every_five, version, "updated")
    await wait_until(lambda: equals(schedule_error(db, every_five), None), message="error cleared")
    clock.set(at(1, 10.5))
    await wait_until(lambda: contains(fired(bus), every_five), message="the slowed-down schedule fires")
    assert every_second not in await fired(bus)
