"""The executor under load, through the running executor: in-flight work is bounded per replica and by the
consumer's max_ack_pending (acceptance 3), and breakers are per (tenant, connector) (acceptance 5)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers.fakes import FINAL, Answer, final_row, publish_event, publish_many, slack_workflow, webhook_envelopes
from tests.helpers.wait import equals, wait_until


async def _succeeded(db: Any) -> int:
    return int(await db.fetchval("SELECT count(*) FROM executions WHERE status = 'succeeded'"))


@pytest.mark.slow
async def test_two_replicas_never_exceed_twice_the_per_replica_limit(bus, db, sink, creds, executor):
    n = 4
    sink.behaviour = lambda _r, _i: Answer(200, "ok", delay=0.15)
    tenant, wf = await slack_workflow(db, creds, sink.url, "{{ payload.i }}")
    for _ in range(2):
        await executor(IPAAS_EXECUTOR_MAX_IN_FLIGHT=str(n), IPAAS_EXECUTOR_FAIRNESS_HEADROOM="0")
    await publish_many(bus, webhook_envelopes(tenant, wf, 60))
    await wait_until(lambda: equals(_succeeded(db), 60), timeout=30, message="all 60 succeeded")
    assert sink.max_concurrent <= 2 * n
    assert sink.max_concurrent == 2 * n  # and the bound is actually used
    assert sink.calls == 60


@pytest.mark.slow
async def test_consumer_never_exceeds_max_ack_pending(bus, db, sink, creds, executor):
    max_ack_pending = 5
    sink.behaviour = lambda _r, _i: Answer(200, "ok", delay=0.1)
    tenant, wf = await slack_workflow(db, creds, sink.url, "{{ payload.i }}")
    for _ in range(2):
        await executor(
            IPAAS_EXECUTOR_MAX_IN_FLIGHT="16",
            IPAAS_EXECUTOR_FAIRNESS_HEADROOM="0",
            IPAAS_EXECUTOR_MAX_ACK_PENDING=str(max_ack_pending),
        )
    await publish_many(bus, webhook_envelopes(tenant, wf, 40))
    peak = 0
    done = False

    async def watch() -> None:
        nonlocal peak
        while not done:
            info = await bus.js.consumer_info("EVENTS", "executor")
            peak = max(peak, info.num_ack_pending)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        await wait_until(lambda: equals(_succeeded(db), 40), timeout=30, message="all 40 succeeded")
    finally:
        done = True
        await watcher
    assert 0 < peak <= max_ack_pending
    assert sink.max_concurrent <= max_ack_pending


RESET = 2.0


@pytest.mark.slow
async def test_breaker_opens_isolates_tenants_trials_once_and_runs_deferred_events(bus, db, sink, creds, executor):
    state = {"a_fixed": False}

    def behaviour(req, _n):
        if req.path.startswith("/a") and not state["a_fixed"]:
            return Answer(500, "down")
        return Answer(200, "ok")

    sink.behaviour = behaviour
    ta, wa = await slack_workflow(db, creds, f"{sink.url}/a", "a{{ payload.i }}")
    tb, wb = await slack_workflow(db, creds, f"{sink.url}/b", "b{{ payload.i }}")
    ex = await executor(
        IPAAS_EXECUTOR_BREAKER_FAIL_MAX="3",
        IPAAS_EXECUTOR_BREAKER_RESET_SECONDS=str(RESET),
        IPAAS_EXECUTOR_MAX_ATTEMPTS="6",
    )

    def a_calls() -> int:
        return len([r for r in sink.requests if r.path.startswith("/a")])

    first = [await publish_event(bus, ta, wa, {"i": i}) for i in range(3)]
    await wait_until(lambda: a_calls() >= 3, timeout=10, message="three failing calls")
    opened_calls = a_calls()
    assert opened_calls == 3
    # While open: more events for A are deferred, B's go through on the same connector.
    later = [await publish_event(bus, ta, wa, {"i": i}) for i in range(3, 8)]
    b_events = [await publish_event(bus, tb, wb, {"i": i}) for i in range(3)]
    for e in b_events:
        row = await final_row(db, e.event_id, timeout=RESET)
        assert row["status"] == "succeeded" and row["attempts"] == 1
    assert a_calls() == opened_calls

    # After the reset timeout exactly one trial call is made; it fails and the breaker re-opens.
    await wait_until(lambda: a_calls() == opened_calls + 1, timeout=RESET + 3, message="one trial call")
    await asyncio.sleep(RESET * 0.6)  # a window in which no second call may arrive
    assert a_calls() == opened_calls + 1

    # The sink recovers: the next trial closes the breaker and every deferred event runs.
    state["a_fixed"] = True
    for e in first + later:
        row = await final_row(db, e.event_id, timeout=RESET * 3 + 5)
        assert row["status"] == "succeeded", row
    texts = {r.json()["text"] for r in sink.requests if r.path.startswith("/a")}
    assert texts == {f"a{i}" for i in range(8)}
    metrics = ex.metrics()
    assert (
        'ipaas_executor_breaker_transitions_total{connector="slack_message",from_state="closed",'
        'to_state="open"} 1.0' in metrics
    )
    assert 'to_state="half_open"} 2.0' in metrics and 'from_state="half_open",to_state="closed"} 1.0' in metrics
    # While open, tries failed fast (counted as attempts, the target not called), within the retry budget.
    assert 'ipaas_executor_breaker_refusals_total{connector="slack_message"}' in metrics
    attempts = await db.fetch("SELECT attempts FROM executions WHERE workflow_id = $1", wa)
    assert all(1 <= r["attempts"] <= 6 for r in attempts)
    assert sum(r["attempts"] for r in attempts) > a_calls()  # some tries never reached the target


@pytest.mark.slow
async def test_hanging_sink_trips_the_breaker_through_timeouts(bus, db, sink, creds, executor):
    sink.behaviour = lambda _r, _n: Answer(200, "ok", delay=30)
    tenant, wf = await slack_workflow(db, creds, sink.url, "x")
    await executor(
        IPAAS_EXECUTOR_BREAKER_FAIL_MAX="2",
        IPAAS_EXECUTOR_BREAKER_RESET_SECONDS="30",
        IPAAS_EXECUTOR_ACTION_TIMEOUT_SECONDS="0.5",
    )
    events = [await publish_event(bus, tenant, wf, {}) for _ in range(2)]
    await wait_until(lambda: sink.calls >= 2, timeout=10, message="two hanging calls")

    async def timed_out():
        rows = [
            await db.fetchrow("SELECT status, error FROM executions WHERE event_id = $1", e.event_id) for e in events
        ]
        return all(r is not None and r["status"] == "failed" and "timed out" in r["error"] for r in rows)

    await wait_until(timed_out, timeout=10, message="both tries timed out")
    more = await publish_event(bus, tenant, wf, {})
    await asyncio.sleep(1.5)  # retries and the new event would call the sink by now if it were closed
    assert sink.calls == 2
    # The new event's try failed fast on the open breaker: an attempt, without a call to the target.
    row = await final_row(db, more.event_id, timeout=10, statuses=(*FINAL, "failed"))  # the try's outcome
    assert row["status"] == "failed" and row["attempts"] == 1 and "circuit open" in row["error"]
