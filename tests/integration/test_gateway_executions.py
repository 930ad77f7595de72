"""Executions and the dead-letter queue through the API (filters, masking, replay)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope, Trigger
from tests.helpers.factories import create_workflow, insert_dead_letter, insert_execution
from tests.helpers.gateway_app import WEBHOOK_WORKFLOW, Gateway, all_pages, list_executions
from tests.helpers.wait import equals, wait_until
from tests.integration.test_gateway_webhooks import stream_messages


async def test_executions_list_filters_pages_and_masks(gw: Gateway, tenant_id: uuid.UUID, db: asyncpg.Connection):
    wf_a = await create_workflow(db, tenant_id, WEBHOOK_WORKFLOW)
    wf_b = await create_workflow(db, tenant_id, WEBHOOK_WORKFLOW)
    base = datetime.now(UTC)
    for i in range(3):
        await insert_execution(db, tenant_id, wf_a, created_at=base - timedelta(seconds=i))
    # As the executor stores it: masked when written (ActionRunner.safe_output).
    masked = {"api_key": "[REDACTED]", "status": 500}
    failed = await insert_execution(db, tenant_id, wf_b, status="failed", output=masked)
    auth = gw.auth(tenant_id)

    only_a = await list_executions(gw, tenant_id, workflow_id=str(wf_a))
    assert len(only_a) == 3 and {e["workflow_id"] for e in only_a} == {str(wf_a)}
    only_failed = await list_executions(gw, tenant_id, status="failed")
    assert [e["id"] for e in only_failed] == [str(failed)]
    assert "output" not in only_failed[0]

    pages = await all_pages(gw, "/api/executions", tenant_id, limit=2)
    assert [len(page) for page in pages] == [2, 2]  # the second page the last
    assert len({e["id"] for page in pages for e in page}) == 4

    detail = (await (await gw.client.get(f"/api/executions/{failed}", headers=auth)).json())["data"]
    assert detail["output"] == masked  # returned as stored

    for params in ({"status": "exploded"}, {"workflow_id": "nope"}, {"limit": "0"}, {"limit": "9" * 40}):
        bad = await gw.client.get("/api/executions", params=params, headers=auth)
        assert bad.status == 422, params


async def test_dlq_replay_reopens_the_execution_and_republishes_the_envelope(
    gw: Gateway, bus: Bus, tenant_id: uuid.UUID, db: asyncpg.Connection
):
    wf = await create_workflow(db, tenant_id, WEBHOOK_WORKFLOW)
    event_id = await insert_dead_letter(db, tenant_id, wf)
    auth = gw.auth(tenant_id)
    listed = (await (await gw.client.get("/api/dlq", headers=auth)).json())["data"]
    assert [d["event_id"] for d in listed] == [str(event_id)]
    assert listed[0]["reason"] == "slack said 500" and listed[0]["attempts"] == 20

    resp = await gw.client.post(f"/api/dlq/{event_id}/replay", headers=auth)
    assert resp.status == 202
    assert (await resp.json())["data"]["event_id"] == str(event_id)
    assert await db.fetchval("SELECT status FROM executions WHERE event_id = $1", event_id) == "failed"
    assert await db.fetchval("SELECT replayed_at FROM dead_letters WHERE event_id = $1", event_id) is not None

    await wait_until(lambda: equals(stream_messages(bus), 1), timeout=10, message="the replayed envelope on EVENTS")
    msg = await bus.js.get_last_msg("EVENTS", f"events.{tenant_id}.{wf}")
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"].startswith(f"replay:{event_id}:")
    envelope = EventEnvelope.model_validate_json(msg.data or b"")
    assert envelope.event_id == event_id and envelope.trigger is Trigger.WEBHOOK

    again = await gw.client.post(f"/api/dlq/{event_id}/replay", headers=auth)
    assert again.status == 409
    assert (await (await gw.client.get("/api/dlq", headers=auth)).json())["data"] == []
