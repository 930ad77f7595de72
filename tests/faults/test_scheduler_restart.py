"""Acceptance 6: a replica killed (or stopped) in the middle of a slot and restarted fires it once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import asyncpg
import pytest

from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.scheduler import schedule_definition, stored_events
from tests.helpers.services import ServiceProcess, metric, metrics_text
from tests.helpers.wait import wait_until

INTERVAL = 4  # seconds: long enough for a restart to land inside the slot it interrupted


async def slots_in_stream(bus: Bus, workflow_id: uuid.UUID) -> list[EventEnvelope]:
    return [env for _, env in await stored_events(bus, workflow_id)]


def duplicate_fires(svc: ServiceProcess) -> float:
    return metric(metrics_text(svc.metrics_url), "ipaas_scheduler_fires_total", 'result="duplicate"')


@pytest.mark.parametrize("how", ["kill", "terminate"])
async def test_restart_in_the_middle_of_a_slot_does_not_fire_it_twice(
    bus: Bus, db: asyncpg.Connection, scheduler_processes: Callable[..., list[ServiceProcess]], how: str
) -> None:
    tenant = await create_tenant(db)
    wf = await create_workflow(db, tenant, schedule_definition("every few seconds", interval_seconds=INTERVAL))
    [replica] = scheduler_processes({})  # a 4 s schedule
    fired = await wait_until(lambda: slots_in_stream(bus, wf), timeout=INTERVAL + 10, message="a first slot")
    slot = fired[-1].scheduled_for
    assert slot is not None
    if how == "kill":
        replica.kill()
    else:
        assert replica.terminate() == 0
    # The worst case of a crash: the slot was published but its progress was never saved.
    await db.execute(
        """INSERT INTO scheduler_state (workflow_id, last_slot) VALUES ($1, $2)
           ON CONFLICT (workflow_id) DO UPDATE SET last_slot = EXCLUDED.last_slot""",
        wf,
        slot - timedelta(seconds=INTERVAL),
    )

    [restarted] = scheduler_processes({})
    # The restarted replica fired the interrupted slot again, and JetStream called it a duplicate.
    await wait_until(lambda: duplicate_fires(restarted) >= 1, timeout=10, message="slot re-fired as duplicate")

    async def two_more() -> bool:
        return len(await slots_in_stream(bus, wf)) >= len(fired) + 2

    await wait_until(two_more, timeout=INTERVAL * 3 + 5, message="two more slots")
    events = await slots_in_stream(bus, wf)
    slots = sorted(e.scheduled_for for e in events if e.scheduled_for is not None)
    assert [s for s, n in Counter(slots).items() if n > 1] == [], "a slot fired twice"
    assert all(b - a == timedelta(seconds=INTERVAL) for a, b in zip(slots, slots[1:], strict=False)), slots
    assert slot in slots
    assert restarted.terminate() == 0
