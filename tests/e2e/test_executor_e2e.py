"""Acceptance 1: an event as the gateway publishes it reaches the fake Slack, rendered, and is logged."""

from __future__ import annotations

import asyncio
import urllib.request

from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import definition, executor_env, final_row, publish_event


async def test_event_reaches_slack_with_rendered_text_and_is_logged(
    bus, db, nats_url, database_url, service, sink, creds
):
    slack = sink
    tenant = await create_tenant(db)
    cred = creds.add(tenant, "slack", {"webhook_url": f"{slack.url}/services/T000/B000/XXXX"})
    wf = await create_workflow(
        db,
        tenant,
        definition("slack_message", {"text": "New order {{ payload.order_id }} for {{ payload.amount }} EUR"}, cred),
    )
    ex = service("services.executor", env=executor_env(nats_url, database_url))

    event = await publish_event(bus, tenant, wf, {"order_id": "A-17", "amount": 42})
    row = await final_row(db, event.event_id)

    assert row["status"] == "succeeded"
    assert row["attempts"] == 1
    assert row["duration_ms"] is not None and row["duration_ms"] >= 0
    assert row["trace_id"] and len(row["trace_id"]) == 32
    assert row["workflow_version"] == 1 and row["trigger"] == "webhook"
    assert slack.calls == 1
    assert slack.requests[0].path == "/services/T000/B000/XXXX"
    assert slack.requests[0].json() == {"text": "New order A-17 for 42 EUR"}
    # The stored output never carries the webhook URL (a secret).
    assert "XXXX" not in str(row["output"])
    ready = await asyncio.to_thread(_get, f"{ex.url}/health/ready")
    assert ready[0] == 200 and '"nats": true' in ready[1] and '"postgres": true' in ready[1]
    metrics = (await asyncio.to_thread(_get, f"{ex.metrics_url}/metrics"))[1]
    assert 'ipaas_executor_executions_total{connector="slack_message",status="succeeded"} 1.0' in metrics


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - local test server
        return int(resp.status), str(resp.read().decode())
