"""A thousand schedules, two scheduler replicas as processes: every slot stored exactly once, none missed.

The replicas split each slot's work (an owner per workflow fires at the slot, the
other replica fires it again as a backup a moment later, a duplicate JetStream
drops).  With both running, the test checks that they really share the work and that
the backups are duplicates; with one killed (SIGKILL, no drain), that the survivor
alone still fires every slot once.  Not timed: the lateness at ten times this scale
is the P5 benchmark's business.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.helpers.schedule_fires import Fire, create_schedules, read_fires
from tests.helpers.services import ServiceProcess, metric, metrics_text
from tests.helpers.wait import wait_until

SCHEDULES = 1000
CRON = "*/10 * * * * *"  # every 10 s, the shortest interval allowed by default
PERIOD = 10
SLOTS = 2
BACKUP_DELAY = 2.0
REPLICA = {"LOG_LEVEL": "INFO", "IPAAS_SCHEDULER_BACKUP_DELAY_SECONDS": str(BACKUP_DELAY)}  # each replica's settings


def _value(replica: ServiceProcess, name: str, labels: str = "") -> float:
    return metric(metrics_text(replica.metrics_url), name, labels)


def _window() -> tuple[int, int]:
    """The next ``SLOTS`` slots, starting at least a second from now."""
    first = (int(time.time() + 1) // PERIOD + 1) * PERIOD
    return first, first + (SLOTS - 1) * PERIOD


async def _fires_after(nats_url: str, first: int, last: int) -> list[Fire]:
    """The window's fires, once the last slot's backups have had their turn too."""
    settle = last + BACKUP_DELAY + 3
    await wait_until(
        lambda: time.time() > settle,
        timeout=settle - time.time() + 5,
        interval=0.2,
        message="the last slot and its backups",
    )

    async def every_fire() -> list[Fire] | None:
        fires = await read_fires(nats_url, first, last)
        return fires if len(fires) >= SCHEDULES * SLOTS else None

    found: list[Fire] = await wait_until(every_fire, timeout=20, interval=0.5, message=f"{SCHEDULES * SLOTS} fires")
    return found


def _check_once_each(fires: list[Fire], ids: list[uuid.UUID], first: int, last: int) -> None:
    per_key = Counter((f.workflow_id, f.slot) for f in fires)
    assert [k for k, n in per_key.items() if n > 1] == [], "a slot was stored twice"
    wanted = {(str(wf), s) for wf in ids for s in range(first, last + 1, PERIOD)}
    missed = wanted - set(per_key)
    assert not missed, f"{len(missed)} slots never fired, e.g. {sorted(missed)[:3]}"
    assert len({f.event_id for f in fires}) == len(fires)
    for f in fires:
        slot_text = datetime.fromtimestamp(f.slot, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert f.msg_id == f"sched:{f.workflow_id}:{slot_text}"


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kill_one", [False, True], ids=["both-replicas", "one-killed"])
async def test_every_slot_of_a_thousand_schedules_is_stored_once(
    nats_url: str,
    database_url: str,
    scheduler_processes: Callable[..., list[ServiceProcess]],
    kill_one: bool,
) -> None:
    ids = await create_schedules(database_url, SCHEDULES, CRON)
    replicas = await asyncio.to_thread(scheduler_processes, REPLICA, REPLICA, timeout=60)
    await wait_until(
        lambda: all(_value(r, "ipaas_scheduler_replicas") == 2 for r in replicas),
        timeout=10,
        message="each replica hears the other",
    )
    if kill_one:
        replicas.pop().kill()  # no drain, no goodbye: the survivor still counts it for a few heartbeats
    first, last = _window()
    fires = await _fires_after(nats_url, first, last)
    _check_once_each(fires, ids, first, last)
    for replica in replicas:
        if kill_one:  # the survivor alone fired every slot
            assert _value(replica, "ipaas_scheduler_replicas") == 1
        else:  # each stored a share of the slots at their time, and also fired the other's as a backup
            for result in ("published", "duplicate"):
                count = _value(replica, "ipaas_scheduler_fires_total", f'result="{result}"')
                assert count >= SCHEDULES * SLOTS / 4, metrics_text(replica.metrics_url)
            assert _value(replica, "ipaas_scheduler_publish_failures_total") == 0
        assert replica.terminate() == 0
