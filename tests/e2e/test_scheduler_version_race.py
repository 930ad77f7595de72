"""Version changes at slot boundaries, two scheduler replicas that disagree, the real executor.

Replica "fresh" reloads from Postgres every 0.3 s; replica "stale" only every
hour, and no change is announced on the feed, so it holds version 1 all along.
Every second-long slot across three changes (made 100 ms before a slot: v2,
then v3 firing every 2 s, then v4 back to every second) must give exactly one
event, one execution and one call, carrying the version current at the slot
(the highest version created at or before it); slots that v3 does not have
must not fire at all, although the stale replica plans them.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from libs.common.bus import Bus
from libs.common.models.events import event_id_for, schedule_dedup_key
from services.scheduler.slots import slot_iso
from tests.helpers.factories import add_version, create_tenant, create_workflow
from tests.helpers.fakes import FakeSink, executor_env
from tests.helpers.services import ServiceProcess, metric, metrics_text
from tests.helpers.wait import wait_until

SLOTS_PER_VERSION = 4


def definition(sink_url: str, name: str, interval: int) -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"type": "schedule", "interval_seconds": interval},
        "action": {
            "type": "http_request",
            "config": {"url": f"{sink_url}/run", "body": {"slot": "{{ payload.scheduled_for }}", "version": name}},
        },
    }


async def until_wall_clock(moment: float) -> None:
    """Act at a chosen instant of real time (this picks when a change lands; it waits for nothing)."""
    await asyncio.sleep(max(0.0, moment - time.time()))


async def expected_fires(db: asyncpg.Connection, wf: uuid.UUID, first: int, last: int) -> dict[int, int]:
    """slot -> version, for every slot in [first, last] that the version current at it has."""
    versions = await db.fetch(
        "SELECT version, created_at, (definition->'trigger'->>'interval_seconds')::int AS interval "
        "FROM workflow_versions WHERE workflow_id = $1 ORDER BY version",
        wf,
    )
    out: dict[int, int] = {}
    for slot in range(first, last + 1):
        moment = datetime.fromtimestamp(slot, UTC)
        current = max((v for v in versions if v["created_at"] <= moment), key=lambda v: v["version"])
        if slot % current["interval"] == 0:
            out[slot] = current["version"]
    return out


def version_checks(svc: ServiceProcess, result: str) -> float:
    """``ipaas_scheduler_version_checks_total{result}`` of one replica."""
    return metric(metrics_text(svc.metrics_url), "ipaas_scheduler_version_checks_total", f'result="{result}"')


async def test_version_changes_at_slot_boundaries_give_one_run_per_slot_with_the_version_current_then(
    bus: Bus,
    db: asyncpg.Connection,
    nats_url: str,
    database_url: str,
    service: Callable[..., Any],
    scheduler_processes: Callable[..., list[ServiceProcess]],
    sink: FakeSink,
) -> None:
    tenant = await create_tenant(db)
    wf = await create_workflow(db, tenant, definition(sink.url, "v1", 1))
    service("services.executor", env=executor_env(nats_url, database_url))
    resync = "IPAAS_SCHEDULER_RESYNC_INTERVAL_SECONDS"  # 1 s and 2 s schedules
    fresh, stale = await asyncio.to_thread(scheduler_processes, {resync: "0.3"}, {resync: "3600"})
    first = math.floor(time.time()) + 2  # both replicas fire every slot from here on

    # Each version holds SLOTS_PER_VERSION slots; each change lands 100 ms before a slot.
    for i, (name, interval) in enumerate((("v2", 1), ("v3", 2), ("v4", 1)), start=1):
        await until_wall_clock(first + i * SLOTS_PER_VERSION - 0.1)
        await add_version(db, wf, definition(sink.url, name, interval))
    last = first + 4 * SLOTS_PER_VERSION - 1
    expected = await expected_fires(db, wf, first, last)
    assert sorted(set(expected.values())) == [1, 2, 3, 4]

    async def executed() -> list[asyncpg.Record]:
        rows = await db.fetch(
            "SELECT event_id, scheduled_for, workflow_version, status FROM executions WHERE workflow_id = $1", wf
        )
        window = [r for r in rows if first <= r["scheduled_for"].timestamp() <= last]
        done = len(window) == len(expected) and all(r["status"] == "succeeded" for r in window)
        return window if done else []

    rows = await wait_until(executed, timeout=30, message="every slot of the window executed")

    # EVENTS is a work queue the executor empties, so the proof is in the rows and the calls: one row per
    # slot (the event id is the slot's), with the version current at the slot, and one call per slot.
    assert {int(r["scheduled_for"].timestamp()): r["workflow_version"] for r in rows} == expected
    assert {r["event_id"] for r in rows} == {event_id_for(wf, schedule_dedup_key(wf, slot_iso(s))) for s in expected}
    calls = [r.json() for r in sink.requests]
    in_window = [c for c in calls if first <= datetime.fromisoformat(c["slot"]).timestamp() <= last]
    assert sorted((int(datetime.fromisoformat(c["slot"]).timestamp()), c["version"]) for c in in_window) == sorted(
        (s, f"v{v}") for s, v in expected.items()
    )

    # The race was real: the stale replica planned from v1 all along, fired slots as v2/v3/v4
    # and dropped the slots v3 does not have.
    assert version_checks(stale, "changed") >= SLOTS_PER_VERSION
    assert version_checks(stale, "not_a_slot") >= 1
    assert metric(metrics_text(stale.metrics_url), "ipaas_scheduler_publish_failures_total") == 0
    for replica in (fresh, stale):
        assert await asyncio.to_thread(replica.terminate) == 0
