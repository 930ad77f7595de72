"""A tenant whose target refuses or hangs cannot stall another tenant (issue: tenant isolation, scenario 1).

Tenant A queues 5,000 webhooks for a target that refuses connections (or
hangs longer than the action timeout); then tenant B sends 200 to a healthy
sink.  Every one of B's events succeeds within 5 s of its 202, each of A's
events gets exactly its attempts and ends in the DLQ, and the ledger holds.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from deploy.local.infra import free_port
from tests.helpers.fakes import Answer
from tests.helpers.ledger import Ledger, http_workflow
from tests.helpers.wait import wait_until

A_EVENTS = 5000
B_EVENTS = 200
MAX_ATTEMPTS = 3


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("target", ["refusing", "hanging"])
async def test_a_failing_neighbour_does_not_delay_a_healthy_tenant(target, bus, db, stack, sinks):
    healthy = await sinks()
    hanging = await sinks(lambda _r, _n: Answer(200, "late", delay=60))
    a_url = f"http://127.0.0.1:{free_port()}/refuses" if target == "refusing" else f"{hanging.url}/hangs"
    stack.start_gateway()
    for _ in range(2):
        # Shorter than the defaults (60 s breaker, 6 attempts) so that A's 5,000 events end in the DLQ
        # within the test, and not so short that they cycle through the stream every second.
        stack.start_executor(
            IPAAS_EXECUTOR_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
            IPAAS_EXECUTOR_BACKOFF_BASE_SECONDS="0.5",
            IPAAS_EXECUTOR_BACKOFF_MAX_SECONDS="2",
            IPAAS_EXECUTOR_BREAKER_RESET_SECONDS="5",
            IPAAS_EXECUTOR_ACTION_TIMEOUT_SECONDS="2",
        )
    a = await stack.tenant(http_workflow(a_url), "noisy")
    b = await stack.tenant(http_workflow(f"{healthy.url}/b"), "quiet")
    a_ledger, b_ledger = Ledger(), Ledger()
    await stack.send_accepted(a_ledger, a, A_EVENTS, concurrency=48)

    await stack.send_accepted(b_ledger, b, B_EVENTS, concurrency=8)
    # The wall-clock time of each 202, to compare with the row's finish.
    sent_wall = {str(r.event_id): time.time() - (time.monotonic() - r.answered_at) for r in b_ledger.answers}

    async def b_final() -> Any:
        found = await db.fetch(
            "SELECT event_id, status, attempts, finished_at FROM executions "
            "WHERE workflow_id = $1 AND status IN ('succeeded', 'dead', 'skipped')",
            b.workflow_id,
        )
        return found if len(found) == B_EVENTS else None

    rows = await wait_until(b_final, timeout=60, interval=0.1, message=f"{B_EVENTS} final rows")
    lateness = sorted(r["finished_at"].timestamp() - sent_wall[str(r["event_id"])] for r in rows)
    assert all(r["status"] == "succeeded" and r["attempts"] == 1 for r in rows)
    assert lateness[-1] <= 5.0, f"B's slowest event finished {lateness[-1]:.2f}s after its 202"

    ledger = Ledger(a_ledger.answers + b_ledger.answers)
    await ledger.settle(db, bus, timeout=200)
    figures = await ledger.check(db, bus, [a.workflow_id, b.workflow_id], healthy)
    assert figures["extra_receipts"] == 0
    a_rows = await db.fetch("SELECT status, attempts FROM executions WHERE workflow_id = $1", a.workflow_id)
    assert len(a_rows) == A_EVENTS
    assert {(r["status"], r["attempts"]) for r in a_rows} == {("dead", MAX_ATTEMPTS)}
    assert await db.fetchval("SELECT count(*) FROM dead_letters WHERE workflow_id = $1", a.workflow_id) == A_EVENTS
    assert len(healthy.paths("/b")) == B_EVENTS
