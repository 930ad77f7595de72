"""A call longer than ack_wait is kept alive by in_progress() heartbeats: no redelivery, one call."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.fakes import Answer, final_row, publish_event, slack_workflow


@pytest.mark.slow
async def test_slow_call_outlives_ack_wait_without_redelivery(
    bus: Any, db: Any, sink: Any, creds: Any, executor: Any
) -> None:
    sink.behaviour = lambda _r, _n: Answer(200, "ok", delay=3.0)
    tenant, wf = await slack_workflow(db, creds, sink.url, "slow")
    await executor(
        IPAAS_EXECUTOR_ACK_WAIT_SECONDS="1",
        IPAAS_EXECUTOR_HEARTBEAT_SECONDS="0.4",
        IPAAS_EXECUTOR_ACTION_TIMEOUT_SECONDS="10",
    )
    event = await publish_event(bus, tenant, wf, {})
    row = await final_row(db, event.event_id, timeout=15)
    assert row["status"] == "succeeded" and row["attempts"] == 1
    assert row["duration_ms"] >= 3000
    assert sink.calls == 1
    info = await bus.js.consumer_info("EVENTS", "executor")
    assert info.num_redelivered == 0
