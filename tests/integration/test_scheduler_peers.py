"""Scheduler replicas hearing each other over NATS: one owner per workflow, and the survivors take over."""

from __future__ import annotations

import uuid

from libs.common.bus import Bus
from services.scheduler.peers import Peers
from tests.helpers.wait import wait_until

HEARTBEAT = 0.1


async def test_live_replicas_split_the_workflows_and_a_stopped_one_leaves_them_to_the_rest(bus: Bus) -> None:
    subject = f"_INBOX_scheduler.replicas_{uuid.uuid4().hex[:8]}"
    seen: list[int] = []
    a = Peers(bus, subject, heartbeat_seconds=HEARTBEAT, on_change=seen.append)
    b = Peers(bus, subject, heartbeat_seconds=HEARTBEAT)
    c = Peers(bus, subject, heartbeat_seconds=HEARTBEAT)
    workflows = [uuid.uuid4() for _ in range(3000)]
    assert all(a.owns(wf) for wf in workflows)  # alone (not started): owns everything
    for peers in (a, b, c):
        await peers.start()
    try:
        await wait_until(lambda: all(len(p.live) == 3 for p in (a, b, c)), timeout=5, message="three replicas")
        assert a.live == b.live == c.live == sorted([a.id, b.id, c.id])
        owners = [[p for p in (a, b, c) if p.owns(wf)] for wf in workflows]
        assert all(len(o) == 1 for o in owners), "each workflow has exactly one owner"
        shares = {p.id: sum(1 for o in owners if o[0] is p) for p in (a, b, c)}
        assert all(700 < n < 1300 for n in shares.values()), shares

        await c.stop()  # gone: no more heartbeats
        await wait_until(lambda: len(a.live) == 2 and len(b.live) == 2, timeout=5, message="c dropped")
        assert all(a.owns(wf) != b.owns(wf) for wf in workflows)
        assert seen[-1] == 2 and 3 in seen
    finally:
        for peers in (a, b, c):
            await peers.stop()
