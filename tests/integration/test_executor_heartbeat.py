"""A call longer than ack_wait is kept alive by in_progress() heartbeats: no redelivery, one call."""

from __future__ import annotations

from typing import Any

from tests.helpers.fakes import (
    Answer,
    CredentialResponder,
    FakeSink,
    executor_env,
    final_row,
    publish_event,
    slack_workflow,
)


async def test_slow_call_outlives_ack_wait_without_redelivery(
    bus: Any, db: Any, nats_url: str, database_url: str, service: Any
) -> None:
    sink = await FakeSink(lambda _r, _n: Answer(200, "ok", delay=3.0)).start()
    creds = await CredentialResponder(nats_url).start()
    try:
        tenant, wf = await slack_workflow(db, creds, sink.url, "slow")
        service(
            "services.executor",
            env=executor_env(
                nats_url,
                database_url,
                IPAAS_EXECUTOR_ACK_WAIT_SECONDS="1",
                IPAAS_EXECUTOR_HEARTBEAT_SECONDS="0.4",
                IPAAS_EXECUTOR_ACTION_TIMEOUT_SECONDS="10",
            ),
        )
        event = await publish_event(bus, tenant, wf, {})
        row = await final_row(db, event.event_id, timeout=15)
        assert row["status"] == "succeeded" and row["attempts"] == 1
        assert row["duration_ms"] >= 3000
        assert sink.calls == 1
        info = await bus.js.consumer_info("EVENTS", "executor")
        assert info.num_redelivered == 0
    finally:
        await creds.stop()
        await sink.stop()
