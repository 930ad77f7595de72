"""A refusing neighbour's backlog never parks a healthy tenant's events (issue 15: P3's latency tail).

The stream holds a backlog of two tenants' events in random order: tenant A's
target refuses connections, tenant B's answers at once.  With a backlog of
both, each tenant has events waiting, so the executor shares admission
between them; A's events fail, open A's breaker and are parked for A's retry
backoff.  B sends no more than A, so B is never over its share and none of
B's events may wait outside the consumer: B's rows all succeed at their
first try, and no B event is ever seen parked in ``deferred_events``.

Every wait here (A's backoff, the fairness deferral) is set to
``PARK_SECONDS``, far above the time the executor needs for B's events: one
parked B event would show both in ``deferred_events`` and in B not finishing
within ``B_BOUND_SECONDS``.  Work counts as slow after ``PATIENCE_SECONDS``
(a slow tenant's events over its slots are parked by design), far above what
B's events take even on a loaded machine.  The bounds are on event waits,
not on the machine's speed.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from deploy.local.infra import free_port
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import publish_many, webhook_envelopes
from tests.helpers.ledger import FaultStack, http_workflow
from tests.helpers.wait import wait_until

A_EVENTS = 1000
B_EVENTS = 1000
PARK_SECONDS = 120.0
PATIENCE_SECONDS = 10.0
B_BOUND_SECONDS = 60.0  # well below PARK_SECONDS: a parked B event cannot finish within it


@pytest.mark.timeout(200)
async def test_a_refusing_neighbours_backlog_never_parks_a_healthy_tenant(
    bus: Any, db: Any, stack: FaultStack, sinks: Any
) -> None:
    healthy = await sinks()
    ta, tb = await create_tenant(db, "refused"), await create_tenant(db, "healthy")
    wa = await create_workflow(db, ta, http_workflow(f"http://127.0.0.1:{free_port()}/refuses"))
    wb = await create_workflow(db, tb, http_workflow(f"{healthy.url}/b"))
    events = webhook_envelopes(ta, wa, A_EVENTS, prefix="a", payload_key="n")
    events += webhook_envelopes(tb, wb, B_EVENTS, prefix="b", payload_key="n")
    random.Random(15).shuffle(events)  # both tenants' events interleaved, as two senders at one rate
    await publish_many(bus, events, concurrency=16)
    b_ids = [e.event_id for e in events if e.tenant_id == tb]

    stack.start_executor(
        LOG_LEVEL="WARNING",
        IPAAS_EXECUTOR_BACKOFF_BASE_SECONDS=str(PARK_SECONDS),
        IPAAS_EXECUTOR_BACKOFF_MAX_SECONDS=str(2 * PARK_SECONDS),
        IPAAS_EXECUTOR_FAIRNESS_DELAY_SECONDS=str(PARK_SECONDS),
        # Work that takes longer than this counts as slow (parked rather than waiting for a slot):
        # far above what B's quick events take even on a loaded machine, far below PARK_SECONDS.
        IPAAS_EXECUTOR_FAIRNESS_PATIENCE_SECONDS=str(PATIENCE_SECONDS),
        IPAAS_EXECUTOR_MAX_IN_FLIGHT="64",
        IPAAS_EXECUTOR_BREAKER_RESET_SECONDS=str(PARK_SECONDS),
    )
    parked_b: set[uuid.UUID] = set()

    async def b_done() -> bool:
        # A parked event sits in deferred_events for PARK_SECONDS: polling every 50 ms cannot miss one.
        rows = await db.fetch("SELECT event_id FROM deferred_events WHERE tenant_id = $1", tb)
        parked_b.update(r["event_id"] for r in rows)
        done = await db.fetchval(
            "SELECT count(*) FROM executions WHERE event_id = ANY($1::uuid[]) AND status = 'succeeded'", b_ids
        )
        return bool(done == B_EVENTS)

    await wait_until(b_done, timeout=B_BOUND_SECONDS, interval=0.05, message="every event of the healthy tenant")
    assert parked_b == set(), f"{len(parked_b)} of the healthy tenant's events were parked"
    b_rows = await db.fetch("SELECT status, attempts FROM executions WHERE event_id = ANY($1::uuid[])", b_ids)
    assert {(r["status"], r["attempts"]) for r in b_rows} == {("succeeded", 1)}
    assert len(healthy.paths("/b")) == B_EVENTS

    # The neighbour's backlog was there and interleaved with B's: its events were tried and are waiting
    # out their retry backoff (parked for "retry"), none of them run again yet.
    tried_a = await db.fetchval(
        "SELECT count(*) FROM executions WHERE workflow_id = $1 AND status = 'failed' AND attempts = 1", wa
    )
    assert tried_a > 0
    parked_a = await db.fetchval("SELECT count(*) FROM deferred_events WHERE tenant_id = $1 AND reason = 'retry'", ta)
    assert parked_a > 0
