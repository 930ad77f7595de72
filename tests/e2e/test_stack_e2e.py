"""The whole platform as processes: auth, gateway and two executors against real NATS and Postgres.

Each process connects to Postgres as its own role (``ipaas_auth``, ``ipaas_gateway``,
``ipaas_executor``), as in every deployment.  An integrator registers, stores a Slack
credential, creates a workflow and sends a signed webhook; the fake Slack receives the
rendered text once, the execution row is ``succeeded`` with one attempt, and the SRE finds
the same trace id in the 202's ``traceparent`` and on the execution row.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import Platform, Stack
from tests.helpers.fakes import Answer, FakeSink
from tests.helpers.wait import wait_until
from tests.helpers.webhooks import signed


@pytest.fixture
async def stack(platform: Platform) -> Stack:
    return await platform(executors=2)


async def test_signed_webhook_reaches_slack_once_with_one_trace(
    stack: Stack, sinks: Any, db: asyncpg.Connection
) -> None:
    slack = await sinks()
    cred = await stack.credential("team slack", "slack", {"webhook_url": f"{slack.url}/services/T000/B000/XXXXXXXX"})
    workflow = await stack.webhook_workflow(
        "orders to slack",
        {
            "type": "slack_message",
            "credential_id": cred["id"],
            "config": {"text": "New order {{ payload.order_id }} for {{ payload.amount }} EUR"},
        },
    )
    assert workflow["version"] == 1
    secret = workflow["webhook"]["secret"]

    body = json.dumps({"order_id": "A-1001", "amount": 42})
    hook_headers = signed(secret, body)
    url = f"{stack.gateway.url}{workflow['webhook']['url']}"
    async with stack.http.post(url, data=body, headers=hook_headers) as r:
        assert r.status == 202, await r.text()
        accepted = (await r.json())["data"]
        traceparent = r.headers["traceparent"]
    assert accepted["duplicate"] is False
    # The sender retries the same delivery: accepted again, never run twice.
    async with stack.http.post(url, data=body, headers=hook_headers) as r:
        assert r.status == 202
        again = (await r.json())["data"]
    assert again == {"event_id": accepted["event_id"], "duplicate": True}

    await wait_until(lambda: slack.calls >= 1, timeout=20, message="slack to be called")
    assert slack.requests[0].json() == {"text": "New order A-1001 for 42 EUR"}
    execution = await stack.execution(workflow["id"], timeout=20)
    assert execution["event_id"] == accepted["event_id"]
    assert execution["attempts"] == 1
    assert execution["duration_ms"] is not None and execution["duration_ms"] >= 0
    assert execution["trigger"] == "webhook"
    assert execution["trace_id"] == traceparent.split("-")[1]

    detail = await stack.call("GET", f"/api/executions/{execution['id']}", expect=200)
    assert "XXXXXXXX" not in json.dumps(detail)  # the webhook URL's secret part never comes back

    # Exactly one call and one row, even with two executors and a re-sent webhook.
    await wait_until(lambda: all(e.alive() for e in stack.executors), timeout=1)
    rows = await db.fetchval("SELECT count(*) FROM executions WHERE workflow_id = $1", uuid.UUID(workflow["id"]))
    # All of it under the services' own roles: nothing connected as the owner or a superuser.
    roles = await db.fetch(
        "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    assert rows == 1
    assert slack.calls == 1
    assert {r[0] for r in roles} == {"ipaas_auth", "ipaas_gateway", "ipaas_executor"}


async def test_manual_run_and_dlq_replay_through_the_api(stack: Stack, sink: FakeSink) -> None:
    sink_ok = {"value": False}
    sink.behaviour = lambda _req, _n: Answer(status=200) if sink_ok["value"] else Answer(status=400, body="bad")
    created = await stack.webhook_workflow(
        "manual http",
        {
            "type": "http_request",
            "config": {"method": "POST", "url": f"{sink.url}/orders", "body": {"id": "{{ payload.id }}"}},
        },
    )
    wf = created["id"]
    run = await stack.call("POST", f"/api/workflows/{wf}/run", {"payload": {"id": "7"}}, expect=202)
    event_id = run["data"]["event_id"]

    async def dead_letter() -> Any:
        page = await stack.call("GET", "/api/dlq", expect=200)
        return next((d for d in page["data"] if d["event_id"] == event_id), None)

    letter = await wait_until(dead_letter, timeout=20, message="a permanent failure in the DLQ")
    assert letter["workflow_id"] == wf and "400" in letter["reason"]
    assert sink.calls == 1  # a permanent 4xx is not retried
    assert sink.requests[0].json() == {"id": "7"}
    assert sink.requests[0].headers["Idempotency-Key"] == event_id

    sink_ok["value"] = True
    await stack.call("POST", f"/api/dlq/{event_id}/replay", None, expect=202)
    done = await stack.execution(wf, timeout=20)  # the replay succeeded
    assert done["event_id"] == event_id
    page = await stack.call("GET", f"/api/executions?workflow_id={wf}", expect=200)
    assert len(page["data"]) == 1  # the same row, not a second one
    assert sink.calls == 2
