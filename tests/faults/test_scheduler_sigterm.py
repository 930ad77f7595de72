"""SIGTERM to a scheduler replica in the middle of firing a few hundred schedules.

It exits 0 within its drain budget and says what it did; no slot goes
unfired (the other replica, or the restarted one, fires it) and none fires
twice; progress never claims a slot that was not published.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg
from nats.js.api import AckPolicy, ConsumerConfig

from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope
from tests.helpers.factories import create_tenant
from tests.helpers.scheduler import schedule_definition
from tests.helpers.services import ServiceProcess
from tests.helpers.wait import wait_until

SCHEDULES = 300
DRAIN_SECONDS = 5.0


async def create_schedules(db: asyncpg.Connection, count: int, catchup: str) -> dict[uuid.UUID, int]:
    """``count`` active interval schedules (every 1 s or 2 s), as workflow id -> interval."""
    tenant = await create_tenant(db)
    schedules = {uuid.uuid4(): 1 + i % 2 for i in range(count)}
    async with db.transaction():
        await db.executemany(
            "INSERT INTO workflows (id, tenant_id, name, current_version, trigger_type) "
            "VALUES ($1, $2, 'load', 1, 'schedule')",
            [(wf, tenant) for wf in schedules],
        )
        await db.executemany(
            "INSERT INTO workflow_versions (workflow_id, version, definition) VALUES ($1, 1, $2::jsonb)",
            [
                (wf, json.dumps(schedule_definition(f"s{i}", interval_seconds=interval, catchup=catchup)))
                for i, (wf, interval) in enumerate(schedules.items())
            ],
        )
    return schedules


async def all_events(bus: Bus) -> list[EventEnvelope]:
    """Every message of the EVENTS stream (no executor runs here, so nothing left it).

    EVENTS is a work queue, which only takes consumers with explicit acks: read through an ephemeral pull
    consumer that never acks (so the messages stay), then delete it.
    """
    total = (await bus.js.stream_info("EVENTS")).state.messages
    if not total:
        return []
    name = f"reader_{uuid.uuid4().hex[:8]}"
    sub = await bus.js.pull_subscribe(
        "events.>",
        durable=name,
        stream="EVENTS",
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=60, max_ack_pending=-1),
    )
    out: list[EventEnvelope] = []
    try:
        while len(out) < total:
            batch = await sub.fetch(batch=min(1000, total - len(out)), timeout=5)
            out += [EventEnvelope.model_validate_json(m.data) for m in batch]
    finally:
        await sub.unsubscribe()
        await bus.js.delete_consumer("EVENTS", name)
    return out


def fired_slots(events: list[EventEnvelope]) -> Counter[tuple[uuid.UUID, int]]:
    """How often each (workflow, slot) is in ``events``, a slot in whole seconds since the epoch."""
    fired: Counter[tuple[uuid.UUID, int]] = Counter()
    for e in events:
        assert e.scheduled_for is not None
        fired[e.workflow_id, int(e.scheduled_for.timestamp())] += 1
    return fired


def unfired(fired: Counter[tuple[uuid.UUID, int]], wf: uuid.UUID, interval: int, first: int, last: int) -> list[int]:
    """``wf``'s slots in [first, last] (one every ``interval`` seconds) that are not in ``fired``."""
    return [s for s in range(first, last + 1) if s % interval == 0 and not fired[wf, s]]


def missing_slots(
    events: list[EventEnvelope], schedules: dict[uuid.UUID, int], first: int, last: int
) -> dict[uuid.UUID, list[int]]:
    fired = fired_slots(events)
    missing = {wf: unfired(fired, wf, interval, first, last) for wf, interval in schedules.items()}
    return {wf: slots for wf, slots in missing.items() if slots}


async def wait_fired_through(
    bus: Bus, schedules: dict[uuid.UUID, int], first: int, last: int, *, timeout: float, message: str
) -> None:
    """Wait until every slot in [first, last] is in the stream (slots fire late on a busy machine); the stream
    is read about 60 times in ``timeout``, each read being a page through all of it."""

    async def done() -> bool:
        return not missing_slots(await all_events(bus), schedules, first, last)

    await wait_until(done, timeout=timeout, interval=timeout / 60, message=message)


def assert_each_slot_once(events: list[EventEnvelope], schedules: dict[uuid.UUID, int], first: int, last: int) -> None:
    assert not [k for k, n in Counter(e.event_id for e in events).items() if n > 1], "an event id twice"
    twice = [slot for slot, n in fired_slots(events).items() if n > 1]
    assert not twice, f"(workflow, slot) fired twice: {twice}"
    missing = missing_slots(events, schedules, first, last)
    assert not missing, f"slots never fired: {missing}"


async def assert_progress_claims_only_published(
    db: asyncpg.Connection, events: list[EventEnvelope], schedules: dict[uuid.UUID, int], first: int
) -> None:
    fired = fired_slots(events)
    rows = await db.fetch("SELECT workflow_id, last_slot FROM scheduler_state")
    claimed = {r["workflow_id"]: int(r["last_slot"].timestamp()) for r in rows}
    assert set(claimed) <= set(schedules)
    for wf, upto in claimed.items():
        unpublished = unfired(fired, wf, schedules[wf], first, upto)
        assert not unpublished, f"{wf}: progress {upto} claims unpublished slots {unpublished}"


def log_lines(svc: ServiceProcess, message: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in svc.logs().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("msg", "").startswith(message)]


async def sigterm_mid_firing(svc: ServiceProcess) -> tuple[int, float]:
    """SIGTERM 20 ms after a slot boundary, when every 1 s schedule is being fired; (exit code, seconds)."""
    await asyncio.sleep(math.ceil(time.time()) + 0.02 - time.time())  # picks the instant; waits for nothing
    started = time.monotonic()
    code = await asyncio.to_thread(svc.terminate, DRAIN_SECONDS + 20)
    return code, time.monotonic() - started


async def test_sigterm_one_of_two_replicas_under_load_every_slot_fires_once(
    bus: Bus, db: asyncpg.Connection, scheduler_processes: Callable[..., list[ServiceProcess]]
) -> None:
    schedules = await create_schedules(db, SCHEDULES, "skip")
    drain = {"IPAAS_SCHEDULER_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    victim, survivor = await asyncio.to_thread(scheduler_processes, drain, drain)
    first = math.floor(time.time()) + 2
    await wait_fired_through(bus, schedules, first, first + 2, timeout=30, message="a few slots under both replicas")

    code, took = await sigterm_mid_firing(victim)
    assert code == 0, victim.logs()[-3000:]
    assert took < DRAIN_SECONDS + 3, f"exit took {took:.1f}s"
    stopped = log_lines(victim, "scheduler stopped")
    fields = {"due_slots", "finished_while_draining", "abandoned_slots", "progress_written"}
    assert len(stopped) == 1 and fields <= set(stopped[0]), stopped
    assert log_lines(victim, "scheduler draining")

    [restarted] = await asyncio.to_thread(scheduler_processes, drain)
    last = math.floor(time.time()) + 2
    await wait_fired_through(bus, schedules, first, last, timeout=60, message="every slot through the restart fired")
    for replica in (survivor, restarted):
        assert await asyncio.to_thread(replica.terminate, DRAIN_SECONDS + 20) == 0

    events = await all_events(bus)
    assert_each_slot_once(events, schedules, first, last)
    await assert_progress_claims_only_published(db, events, schedules, first)


async def test_sigterm_abandons_due_slots_without_claiming_them_and_the_restart_fires_them(
    db: asyncpg.Connection, scheduler_processes: Callable[..., list[ServiceProcess]], bus: Bus
) -> None:
    """One replica with one PubAck awaited at a time and almost no drain budget: due slots really are left over.

    Publishing is batched, so a few hundred sequential PubAcks take only tens of milliseconds:
    five times the usual load keeps this replica firing well past the 50 ms budget.
    """
    schedules = await create_schedules(db, 5 * SCHEDULES, "all")
    one_at_a_time = {"IPAAS_SCHEDULER_FIRE_CONCURRENCY": "1", "IPAAS_SCHEDULER_DRAIN_SECONDS": "0.05"}
    [alone] = scheduler_processes(one_at_a_time)
    first = math.floor(time.time()) + 2
    await wait_fired_through(bus, schedules, first, first + 2, timeout=30, message="a few slots")

    code, took = await sigterm_mid_firing(alone)
    assert code == 0 and took < 5, (code, took, alone.logs()[-3000:])
    stopped = log_lines(alone, "scheduler stopped")
    assert len(stopped) == 1 and stopped[0]["abandoned_slots"] > 0, stopped
    # Only this replica wrote progress: none of it may claim a slot that is not in the stream.
    await assert_progress_claims_only_published(db, await all_events(bus), schedules, first)

    [restarted] = scheduler_processes(one_at_a_time)
    last = math.floor(time.time()) + 1
    message = "abandoned and missed slots fired by the restarted replica"
    await wait_fired_through(bus, schedules, first, last, timeout=60, message=message)
    assert await asyncio.to_thread(restarted.terminate, 20) == 0
    events = await all_events(bus)
    assert_each_slot_once(events, schedules, first, last)
    await assert_progress_claims_only_published(db, events, schedules, first)
