"""Acceptance 1, in real time: two scheduler replicas, an every-second schedule, one event per slot."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import asyncpg

from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.scheduler import schedule_definition, stored_events
from tests.helpers.services import ServiceProcess, metric, metrics_text
from tests.helpers.wait import wait_until

SLOTS_TO_WATCH = 5


async def scheduled_events(bus: Bus, workflow_id: uuid.UUID) -> list[tuple[str, EventEnvelope]]:
    return [(headers.get("Nats-Msg-Id", ""), env) for headers, env in await stored_events(bus, workflow_id)]


async def test_two_replicas_fire_each_second_exactly_once_without_gaps(
    bus: Bus, db: asyncpg.Connection, scheduler_processes: Callable[..., list[ServiceProcess]]
) -> None:
    tenant = await create_tenant(db)
    every_second = schedule_definition("every second", cron="* * * * * *", timezone="Europe/Paris")
    wf = await create_workflow(db, tenant, every_second)
    replicas = scheduler_processes({"LOG_LEVEL": "INFO"}, {"LOG_LEVEL": "INFO"})
    # Both replicas are firing from here on.
    start = len(await scheduled_events(bus, wf))

    async def more_slots() -> bool:
        return len(await scheduled_events(bus, wf)) > start + SLOTS_TO_WATCH

    await wait_until(more_slots, timeout=20, message=f"{SLOTS_TO_WATCH} more slots")
    await wait_until(
        lambda: all(
            metric(metrics_text(r.metrics_url), "ipaas_scheduler_fires_total") >= SLOTS_TO_WATCH for r in replicas
        ),
        timeout=10,
        message="both replicas fired every slot",
    )

    found = await scheduled_events(bus, wf)
    msg_ids = [m for m, _ in found]
    slots = [e.scheduled_for for _, e in found]
    assert all(s is not None for s in slots)
    assert not [k for k, n in Counter(msg_ids).items() if n > 1], "a msg id appears twice"
    assert not [k for k, n in Counter(slots).items() if n > 1], "a slot was fired twice"
    assert len({e.event_id for _, e in found}) == len(found)
    ordered = sorted(s for s in slots if s is not None)
    gaps = [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b - a != timedelta(seconds=1)]
    assert not gaps, f"missing slots between {gaps}"
    for msg_id, env_ in found:
        assert env_.trigger == "schedule"
        assert msg_id == env_.dedup_key == f"sched:{wf}:{env_.scheduled_for:%Y-%m-%dT%H:%M:%SZ}"
        assert env_.workflow_version == 1
    for replica in replicas:
        text = metrics_text(replica.metrics_url)
        assert metric(text, "ipaas_scheduler_schedules_loaded") == 1
        assert metric(text, "ipaas_scheduler_fire_lateness_seconds_count") >= SLOTS_TO_WATCH
        assert metric(text, "ipaas_scheduler_publish_failures_total") == 0
        assert replica.terminate() == 0
