"""Never twice, never after a disable: leases, outcome writes that outlast a failure, disable-means-stop.

Scenarios of the tenant-isolation issue: (3) Postgres rejects the finish write
once after the action succeeded: the sink is called once; (4) the ack deadline
passes mid-action with two replicas: the action runs once; (5) a workflow
disabled while 1,000 of its events are queued: none runs after the PATCH
returned, the rest are recorded ``skipped``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from tests.helpers.fakes import Answer
from tests.helpers.ledger import Ledger, http_workflow
from tests.helpers.wait import wait_until

# Every finish write that would record a success fails, until the sequence passes `failures`.
REJECT_FINISH_ONCE = """
CREATE SEQUENCE injected_failures;
CREATE FUNCTION reject_success_once() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'succeeded' AND OLD.status = 'running' AND nextval('injected_failures') <= 1 THEN
        RAISE EXCEPTION 'injected: the finish write is rejected once';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER reject_success_once BEFORE UPDATE ON executions FOR EACH ROW EXECUTE FUNCTION reject_success_once();
-- The trigger runs as the role that writes the row: the executor's own.
GRANT USAGE ON SEQUENCE injected_failures TO ipaas_executor;
"""


@pytest.mark.timeout(120)
async def test_a_rejected_finish_write_is_retried_and_the_sink_is_called_once(bus, db, stack, sink):
    stack.start_gateway()
    stack.start_executor()
    tenant = await stack.tenant(http_workflow(f"{sink.url}/t"))
    await db.execute(REJECT_FINISH_ONCE)
    ledger = Ledger()
    await stack.send_accepted(ledger, tenant, 20, concurrency=10)
    await stack.every_event_once(ledger, tenant, bus, sink, timeout=60)
    assert await db.fetchval("SELECT last_value FROM injected_failures") > 1  # it did reject a write
    assert Counter(r.headers["Idempotency-Key"] for r in sink.requests) == Counter({e: 1 for e in ledger.accepted})
    rows = await db.fetch("SELECT attempts FROM executions WHERE workflow_id = $1", tenant.workflow_id)
    assert {r["attempts"] for r in rows} == {1}


@pytest.mark.timeout(120)
async def test_an_action_slower_than_ack_wait_runs_once_across_two_replicas(bus, db, stack, sink):
    # The sink takes 3 s; JetStream redelivers after 1 s (heartbeats every 5 s come too late): each
    # redelivery meets the first replica's live lease and waits, parked, instead of running the action.
    sink.behaviour = lambda _r, _n: Answer(200, "slow", delay=3.0)
    stack.start_gateway()
    for _ in range(2):
        stack.start_executor(
            IPAAS_EXECUTOR_ACK_WAIT_SECONDS="1",
            IPAAS_EXECUTOR_HEARTBEAT_SECONDS="5",
            IPAAS_EXECUTOR_LEASE_SECONDS="10",
        )
    tenant = await stack.tenant(http_workflow(f"{sink.url}/slow"))
    ledger = Ledger()
    await stack.send_accepted(ledger, tenant, 5, concurrency=5)

    await wait_until(
        lambda: db.fetchval("SELECT count(*) FROM deferred_events WHERE reason = 'lease'"),
        timeout=10,
        message="a redelivery parked behind a live lease",
    )
    await stack.every_event_once(ledger, tenant, bus, sink, timeout=60)
    assert sink.calls == 5
    assert Counter(r.headers["Idempotency-Key"] for r in sink.requests) == Counter({e: 1 for e in ledger.accepted})


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_nothing_runs_after_a_disable_returns(bus, db, stack, sink):
    sink.behaviour = lambda _r, _n: Answer(200, "ok", delay=0.02)
    stack.start_gateway()
    tenant = await stack.tenant(http_workflow(f"{sink.url}/d"))
    ledger = Ledger()
    await stack.send_accepted(ledger, tenant, 1000, concurrency=32)  # queued: no executor runs yet
    for _ in range(2):
        stack.start_executor(IPAAS_EXECUTOR_MAX_IN_FLIGHT="32")
    await wait_until(lambda: sink.calls >= 100, timeout=30, message="runs under way")
    status, body = await stack.api("PATCH", f"/api/workflows/{tenant.workflow_id}", tenant, {"is_active": False})
    returned = time.monotonic()
    assert status == 200 and body["data"]["is_active"] is False
    await ledger.settle(db, bus, timeout=90)
    late = [r for r in sink.requests if r.at > returned]
    assert not late, f"{len(late)} actions ran after the disable returned"
    figures = await ledger.check(db, bus, [tenant.workflow_id], sink)
    rows: Any = figures["rows"]
    assert rows["succeeded"] == sink.calls and rows["skipped"] == 1000 - sink.calls
    assert rows["skipped"] > 0
    skipped = await db.fetch("SELECT DISTINCT error FROM executions WHERE status = 'skipped'")
    assert [r["error"] for r in skipped] == ["skipped: workflow is disabled"]
