"""Acceptance 9: SIGTERM to one replica mid-load loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio

from tests.helpers.fakes import Answer, publish_many, slack_workflow, webhook_envelopes
from tests.helpers.services import metric, metrics_text
from tests.helpers.wait import wait_until

EVENTS = 800


def _succeeded_metric(url: str) -> float:
    return metric(metrics_text(url), "ipaas_executor_executions_total", '[^}]*status="succeeded"[^}]*')


async def test_sigterm_mid_load_hands_the_rest_to_the_other_replica(bus, db, stack, sink, creds):
    sink.behaviour = lambda _r, _n: Answer(200, "ok", delay=0.02)
    tenant, wf = await slack_workflow(db, creds, sink.url, "n{{ payload.i }}")
    env = {
        "IPAAS_EXECUTOR_MAX_IN_FLIGHT": "16",
        "IPAAS_EXECUTOR_TENANT_SHARE": "1",
        "IPAAS_EXECUTOR_GRACE_SECONDS": "5",
    }
    victim, survivor = stack.start_executor(**env), stack.start_executor(**env)
    envelopes = webhook_envelopes(tenant, wf, EVENTS)
    await publish_many(bus, envelopes, concurrency=128)

    async def succeeded(at_least: int) -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM executions WHERE status = 'succeeded'") >= at_least)

    await wait_until(lambda: succeeded(EVENTS // 5), timeout=30, message="load under way")
    # terminate() blocks while the process drains: run it off the loop that serves the fake sink.
    assert await asyncio.to_thread(victim.terminate, 20) == 0
    after_victim = await asyncio.to_thread(_succeeded_metric, survivor.metrics_url)
    assert "executor stopped" in victim.logs()

    await wait_until(lambda: succeeded(EVENTS), timeout=60, message="every event succeeded")
    rows = await db.fetch("SELECT event_id, status, attempts FROM executions")
    assert len(rows) == EVENTS
    assert {r["event_id"] for r in rows} == {e.event_id for e in envelopes}
    assert all(r["status"] == "succeeded" for r in rows)
    # Every event's effect reached the sink; none was delivered twice (in-flight work finished in the grace).
    texts = [r.json()["text"] for r in sink.requests]
    assert sorted(set(texts)) == sorted(f"n{i}" for i in range(EVENTS))
    assert len(texts) == EVENTS
    assert await asyncio.to_thread(_succeeded_metric, survivor.metrics_url) > after_victim
