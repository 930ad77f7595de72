"""The scheduler through NATS and Postgres outages: nothing fired twice, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from deploy.local.infra import NatsServer, PostgresServer
from libs.common.bus import Bus
from libs.common.db import create_pool
from libs.common.settings import DatabaseSettings
from services.scheduler.runtime import SchedulerRuntime
from services.scheduler.settings import SchedulerOptions
from tests.helpers.factories import connection, create_tenant, create_workflow, fetchval_once
from tests.helpers.scheduler import T0, at, publish_change, schedule_definition, stored_events
from tests.helpers.wait import equals, wait_until
from tests.helpers.wall_clock import ManualClock

DEFINITION = schedule_definition("every minute", interval_seconds=60)


async def fired(bus: Bus) -> list[str]:
    out = []
    for _, env in await stored_events(bus):
        assert env.scheduled_for is not None
        out.append(env.scheduled_for.strftime("%H:%M:%S"))
    return out


@asynccontextmanager
async def first_slot_fired(
    bus: Bus, pool: asyncpg.Pool, retry_max_seconds: float
) -> AsyncIterator[tuple[ManualClock, SchedulerRuntime]]:
    """A replica on a manual clock, once it fired 12:01, DEFINITION's first slot; stopped on the way out
    (before the test closes its bus and pool)."""
    clock = ManualClock(T0)
    options = SchedulerOptions(resync_interval_seconds=3600.0, retry_max_seconds=retry_max_seconds)
    rt = SchedulerRuntime(bus, pool, clock, options)
    try:
        await rt.start()
        await wait_until(lambda: rt.ready, timeout=10, message="ready")
        clock.set(at(1))
        await wait_until(lambda: equals(fired(bus), ["12:01:00"]), message="first slot")
        yield clock, rt
    finally:
        await rt.stop()


async def test_a_slot_due_while_nats_is_down_fires_once_when_it_is_back(
    private_nats: NatsServer, private_bus: Bus, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    tenant = await create_tenant(db)
    wf = await create_workflow(db, tenant, DEFINITION)
    async with first_slot_fired(private_bus, pool, retry_max_seconds=1.0) as (clock, rt):
        private_nats.kill()
        await wait_until(lambda: not rt.ready, timeout=10, message="not ready without NATS")
        clock.set(at(2))
        await wait_until(lambda: rt.metrics.publish_failures._value.get() >= 1, timeout=10, message="a publish failed")

        await asyncio.to_thread(private_nats.start)

        async def delivered() -> bool:
            if clock.now() < at(2, 58):
                clock.advance(0.5)  # let the retry backoff elapse, staying before the next slot
            return await fired(private_bus) == ["12:01:00", "12:02:00"]

        await wait_until(delivered, timeout=30, interval=0.1, message="slot delivered after the outage")
        await wait_until(lambda: rt.ready, timeout=10, message="ready again")
        clock.set(at(3))
        await wait_until(lambda: equals(fired(private_bus), ["12:01:00", "12:02:00", "12:03:00"]), message="next slot")
        assert await db.fetchval("SELECT count(*) FROM executions WHERE status = 'skipped'") == 0

        # The change feed survived the outage too: a disable still lands.
        await db.execute("UPDATE workflows SET is_active = false WHERE id = $1", wf)
        await publish_change(private_bus, tenant, wf, 1, "disabled", is_active=False)
        await wait_until(lambda: wf not in rt.engine.workflow_ids(), timeout=15, message="disable applied")


async def test_schedules_keep_firing_while_postgres_is_down_and_progress_is_saved_after(
    private_pg: PostgresServer,
    bus: Bus,
) -> None:
    dsn = private_pg.dsn("ipaas")
    async with connection(dsn) as conn:
        tenant = await create_tenant(conn)
        wf = await create_workflow(conn, tenant, DEFINITION)
        # The test server runs without fsync/synchronous_commit: make the schema survive its SIGKILL.
        await conn.execute("CHECKPOINT")
    pool = await create_pool(DatabaseSettings(DATABASE_URL=dsn))
    try:
        async with first_slot_fired(bus, pool, retry_max_seconds=0.5) as (clock, rt):
            private_pg.kill()
            clock.set(at(2))
            clock.set(at(3))
            await wait_until(
                lambda: equals(fired(bus), ["12:01:00", "12:02:00", "12:03:00"]), message="fires without postgres"
            )

            await asyncio.to_thread(private_pg.start)

            async def saved() -> Any:
                return await fetchval_once(dsn, "SELECT last_slot FROM scheduler_state WHERE workflow_id = $1", wf)

            await wait_until(lambda: equals(saved(), at(3, 0)), timeout=20, interval=0.2, message="progress saved")
    finally:
        await pool.close()
