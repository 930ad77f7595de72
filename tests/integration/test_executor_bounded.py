"""Acceptance 3: in-flight work is bounded per replica and by the consumer's max_ack_pending."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers.fakes import Answer, publish_many, slack_workflow, webhook_envelopes
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
