"""Workflows API: CRUD, versions, rollback, pagination, outbox, manual run (issue 4, acceptance 6)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson
from nats.aio.msg import Msg

from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope, Trigger, WorkflowChanged
from tests.helpers.gateway_app import SCHEDULE_WORKFLOW, WEBHOOK_WORKFLOW, Gateway, all_pages, create_webhook_workflow
from tests.helpers.wait import equals, wait_until


async def test_create_returns_version_1_and_the_webhook_secret_once(gw: Gateway, tenant_id: uuid.UUID):
    resp = await gw.client.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=gw.auth(tenant_id))
    assert resp.status == 201
    body = await resp.json()
    assert body["success"] is True
    data = body["data"]
    assert data["version"] == 1 and data["is_active"] is True and data["name"] == "orders to slack"
    assert data["webhook"]["url"] == f"/hooks/{data['id']}"
    assert data["webhook"]["secret"].startswith("whsec_")
    assert resp.headers["X-Request-Id"]

    got = await gw.client.get(f"/api/workflows/{data['id']}", headers=gw.auth(tenant_id))
    fetched = (await got.json())["data"]
    assert fetched["webhook"] == {"url": f"/hooks/{data['id']}"}  # the secret is not shown again
    assert fetched["action"] == WEBHOOK_WORKFLOW["action"]


async def test_schedule_validation_happens_at_write_time(gw: Gateway, tenant_id: uuid.UUID):
    bad_cron = {**SCHEDULE_WORKFLOW, "trigger": {"type": "schedule", "cron": "61 * * * *"}}
    bad_zone = {**SCHEDULE_WORKFLOW, "trigger": {"type": "schedule", "cron": "* * * * *", "timezone": "Mars/Base"}}
    for body in (bad_cron, bad_zone):
        resp = await gw.client.post("/api/workflows", json=body, headers=gw.auth(tenant_id))
        assert resp.status == 422
        error = (await resp.json())["error"]
        assert error["code"] == "validation_error"
        assert any(d["field"].startswith("trigger") for d in error["details"])
    ok = await gw.client.post("/api/workflows", json=SCHEDULE_WORKFLOW, headers=gw.auth(tenant_id))
    assert ok.status == 201
    assert (await ok.json())["data"]["webhook"] is None


async def test_rollback_makes_version_1_current_under_a_new_number(gw: Gateway, tenant_id: uuid.UUID):
    auth = gw.auth(tenant_id)
    created = (await (await gw.client.post("/api/workflows", json=SCHEDULE_WORKFLOW, headers=auth)).json())["data"]
    wid = created["id"]
    v2 = {**SCHEDULE_WORKFLOW, "name": "every 5 minutes", "trigger": {"type": "schedule", "interval_seconds": 300}}
    put = await gw.client.put(f"/api/workflows/{wid}", json=v2, headers=auth)
    assert put.status == 200
    assert (await put.json())["data"]["version"] == 2

    rolled = await gw.client.post(f"/api/workflows/{wid}/rollback", json={"version": 1}, headers=auth)
    assert rolled.status == 200
    data = (await rolled.json())["data"]
    assert data["version"] == 3
    assert data["name"] == SCHEDULE_WORKFLOW["name"]
    assert data["trigger"]["cron"] == "0 * * * *"

    history = (await (await gw.client.get(f"/api/workflows/{wid}/versions", headers=auth)).json())["data"]
    assert [v["version"] for v in history] == [1, 2, 3]
    assert [v["current"] for v in history] == [False, False, True]
    assert history[1]["definition"]["name"] == "every 5 minutes"
    assert history[2]["definition"] == history[0]["definition"]

    missing = await gw.client.post(f"/api/workflows/{wid}/rollback", json={"version": 9}, headers=auth)
    assert missing.status == 404


async def test_cursor_pagination_walks_every_workflow_once(gw: Gateway, tenant_id: uuid.UUID):
    auth = gw.auth(tenant_id)
    created = set()
    for i in range(5):
        resp = await gw.client.post("/api/workflows", json={**SCHEDULE_WORKFLOW, "name": f"wf {i}"}, headers=auth)
        created.add((await resp.json())["data"]["id"])
    seen = [w["id"] for page in await all_pages(gw, "/api/workflows", tenant_id, limit=2) for w in page]
    assert len(seen) == 5 and set(seen) == created
    bad = await gw.client.get("/api/workflows", params={"cursor": "!!!"}, headers=auth)
    assert bad.status == 422


async def test_patch_disables_delete_hides_and_every_change_reaches_the_change_stream_in_order(
    gw: Gateway, bus: Bus, tenant_id: uuid.UUID, db: asyncpg.Connection
):
    auth = gw.auth(tenant_id)
    wid = (await (await gw.client.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=auth)).json())["data"]["id"]
    patched = await gw.client.patch(f"/api/workflows/{wid}", json={"is_active": False}, headers=auth)
    assert patched.status == 200 and (await patched.json())["data"]["is_active"] is False
    assert (await gw.client.post(f"/api/workflows/{wid}/webhook-secret", headers=auth)).status == 200
    assert (await gw.client.delete(f"/api/workflows/{wid}", headers=auth)).status == 200
    # A deleted workflow is hidden.
    assert (await gw.client.get(f"/api/workflows/{wid}", headers=auth)).status == 404
    assert (await (await gw.client.get("/api/workflows", headers=auth)).json())["data"] == []

    async def four() -> bool:
        return int((await bus.js.stream_info("WORKFLOW_CHANGES")).state.messages) >= 4

    await wait_until(four, timeout=10, message="four change messages")

    # The relay marks its rows published once their PubAcks are in: a moment after the stream has them.
    unmarked = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
    await wait_until(lambda: equals(db.fetchval(unmarked), 0), message="every outbox row marked published")
    ids = [r["id"] for r in await db.fetch("SELECT id FROM outbox ORDER BY id")]
    changes = []
    for seq in range(1, 5):
        msg = await bus.js.get_msg("WORKFLOW_CHANGES", seq)
        assert msg.headers is not None
        assert msg.headers["Nats-Msg-Id"] == f"outbox:{ids[seq - 1]}"
        assert msg.subject == f"workflows.changed.{tenant_id}.{wid}"
        changes.append(WorkflowChanged.model_validate_json(msg.data or b""))
    assert [c.change for c in changes] == ["created", "disabled", "secret_rotated", "deleted"]
    assert changes[-1].deleted is True


async def test_manual_run_publishes_a_manual_event(gw: Gateway, tenant_id: uuid.UUID, bus: Bus):
    auth = gw.auth(tenant_id)
    wid = (await (await gw.client.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=auth)).json())["data"]["id"]
    run, keyed = f"/api/workflows/{wid}/run", {**auth, "Idempotency-Key": "run-7"}
    resp = await gw.client.post(run, json={"payload": {"order_id": 7}}, headers=keyed)
    assert resp.status == 202
    event_id = (await resp.json())["data"]["event_id"]
    msg = await bus.js.get_last_msg("EVENTS", f"events.{tenant_id}.{wid}")
    envelope = EventEnvelope.model_validate_json(msg.data or b"")
    assert str(envelope.event_id) == event_id
    assert envelope.trigger is Trigger.MANUAL and envelope.payload == {"order_id": 7}
    again = await gw.client.post(run, json={"payload": {"order_id": 7}}, headers=keyed)
    assert (await again.json())["data"] == {"event_id": event_id, "duplicate": True}


async def test_dry_run_goes_to_the_executor_and_records_nothing(
    gw: Gateway, bus: Bus, tenant_id: uuid.UUID, db: asyncpg.Connection
):
    auth = gw.auth(tenant_id)
    body = {"workflow": SCHEDULE_WORKFLOW, "payload": {"city": "Paris"}}

    nobody = await gw.client.post("/api/workflows/dry-run", json=body, headers=auth)
    assert nobody.status == 503 and "Retry-After" in nobody.headers

    requests: list[dict[str, Any]] = []
    reply = {"status": "succeeded", "output": {"status": 200, "token": "abc"}, "error": None, "duration_ms": 12}

    async def executor(msg: Msg) -> None:
        requests.append(orjson.loads(msg.data))
        await msg.respond(orjson.dumps(reply))

    await bus.nc.subscribe("svc.executor.dry_run", cb=executor)
    await bus.nc.flush()  # the server has the subscription before the gateway asks
    resp = await gw.client.post("/api/workflows/dry-run", json=body, headers=auth)
    assert resp.status == 200
    data = (await resp.json())["data"]
    assert data["status"] == "succeeded" and data["duration_ms"] == 12
    assert data["output"]["status"] == 200 and data["output"]["token"] != "abc"  # masked
    assert requests[0]["tenant_id"] == str(tenant_id)
    assert requests[0]["payload"] == {"city": "Paris"}
    assert requests[0]["workflow"]["name"] == SCHEDULE_WORKFLOW["name"]
    assert await db.fetchval("SELECT count(*) FROM executions") == 0


async def test_unknown_tenant_in_token_is_refused(gw: Gateway):
    resp = await gw.client.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=gw.auth(uuid.uuid4()))
    assert resp.status == 403


async def test_changing_the_trigger_type_manages_the_webhook_secret(gw: Gateway, tenant_id: uuid.UUID):
    auth = gw.auth(tenant_id)
    wid, first_secret = await create_webhook_workflow(gw, tenant_id)

    to_schedule = await gw.client.put(f"/api/workflows/{wid}", json=SCHEDULE_WORKFLOW, headers=auth)
    assert to_schedule.status == 200
    assert (await to_schedule.json())["data"]["webhook"] is None
    rotate = await gw.client.post(f"/api/workflows/{wid}/webhook-secret", headers=auth)
    assert rotate.status == 409

    back = await gw.client.post(f"/api/workflows/{wid}/rollback", json={"version": 1}, headers=auth)
    data = (await back.json())["data"]
    assert data["version"] == 3
    assert data["webhook"]["secret"].startswith("whsec_") and data["webhook"]["secret"] != first_secret
