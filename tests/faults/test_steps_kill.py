"""kill -9 of the executor in the middle of multi-step workflows: a step whose outcome was recorded never
runs again.

Each event's step 2 hangs on its first call; once every event's step 1 is checkpointed and every
step 2 is in flight, the executor is killed (SIGKILL: no grace, no release of its leases).  A new
executor takes the events over when the leases run out: step 1's target has been called exactly once
per event, step 2's is called again (its outcome was never recorded, so that is allowed), step 3's
once, and every execution ends ``succeeded``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import Answer, Seen, http_step, publish_event, steps_workflow
from tests.helpers.wait import wait_until

EVENTS = 6
STEPS = ("first", "second", "third")
FAST_TAKEOVER = {
    "IPAAS_EXECUTOR_ACK_WAIT_SECONDS": "2",
    "IPAAS_EXECUTOR_HEARTBEAT_SECONDS": "0.5",
    "IPAAS_EXECUTOR_LEASE_SECONDS": "2",
}


@pytest.mark.timeout(120)
async def test_a_recorded_step_never_runs_again_after_kill_9(bus, db, stack, sinks):
    hung: set[str] = set()

    def answer(req: Seen, _n: int) -> Answer:
        key = req.headers["Idempotency-Key"]
        if req.path == "/second" and key not in hung:
            hung.add(key)
            return Answer(200, "{}", delay=60.0)  # the first call of step 2 never answers in time
        return Answer(200, "{}")

    sink = await sinks(answer)
    tenant = await create_tenant(db)
    chain = [http_step(s, f"{sink.url}/{s}", {"n": "{{ payload.n }}"}) for s in STEPS]
    wf = await create_workflow(db, tenant, steps_workflow(chain))
    env = {"IPAAS_EXECUTOR_ACTION_TIMEOUT_SECONDS": "90", **FAST_TAKEOVER}
    doomed = stack.start_executor(**env)
    events = [await publish_event(bus, tenant, wf, {"n": n}) for n in range(EVENTS)]

    async def all_in_step_2() -> bool:
        recorded = await db.fetchval(
            "SELECT count(*) FROM execution_steps WHERE step_id = 'first' AND status = 'succeeded'"
        )
        return recorded == EVENTS and len(hung) == EVENTS

    await wait_until(all_in_step_2, timeout=30, message="every event's step 1 recorded and step 2 in flight")
    doomed.kill()
    assert not doomed.alive()
    stack.start_executor(**env)

    async def all_done() -> bool:
        rows = await db.fetch("SELECT status FROM executions WHERE workflow_id = $1", wf)
        return len(rows) == EVENTS and all(r["status"] == "succeeded" for r in rows)

    await wait_until(all_done, timeout=60, message="every execution to succeed after the takeover")
    calls = Counter((r.path, r.headers["Idempotency-Key"]) for r in sink.requests)
    for event in events:
        assert calls[("/first", f"{event.event_id}:first")] == 1
        assert calls[("/second", f"{event.event_id}:second")] == 2  # the killed call, then the takeover's
        assert calls[("/third", f"{event.event_id}:third")] == 1
    steps = await db.fetch(
        "SELECT step_id, status, attempts FROM execution_steps WHERE event_id = ANY($1::uuid[])",
        [e.event_id for e in events],
    )
    assert Counter((s["step_id"], s["status"], s["attempts"]) for s in steps) == {
        (s, "succeeded", 1): EVENTS for s in STEPS
    }
