"""Values nothing downstream can carry are refused at the body-parsing edge of every API route (422, field paths).

Integers outside the signed 64-bit range would fail later, far from the
request (orjson on the bus, a relay pass shared by every tenant); the
edge names each one. Webhook ingest keeps its own status table and carries
such values exact.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from libs.common.bus import Bus
from tests.helpers.auth_setup import add_credential, bearer, register_and_login
from tests.helpers.gateway_app import SCHEDULE_WORKFLOW, WEBHOOK_WORKFLOW, Gateway, create_webhook_workflow, tenant
from tests.helpers.webhooks import signed

BIG = 2**63  # one past the largest signed 64-bit integer
SMALL = -(2**63) - 1


def with_body(value: Any) -> dict[str, Any]:
    workflow: dict[str, Any] = json.loads(json.dumps(SCHEDULE_WORKFLOW))
    workflow["action"]["config"]["body"] = {"n": value}
    return workflow


async def refused(resp: aiohttp.ClientResponse) -> list[str]:
    body = await resp.json()
    assert resp.status == 422, body
    assert body["error"]["code"] == "validation_error"
    assert all(d["type"] == "int_out_of_range" for d in body["error"]["details"])
    return [d["field"] for d in body["error"]["details"]]


async def test_every_workflow_route_refuses_integers_beyond_64_bits_naming_the_field(gw: Gateway, database_url: str):
    auth = gw.auth(await tenant(database_url))
    client = gw.client
    created = await client.post("/api/workflows", json=with_body(2**63 - 1), headers=auth)
    assert created.status == 201, await created.text()
    wid = (await created.json())["data"]["id"]
    dry = {"workflow": with_body(SMALL), "payload": {"x": BIG}}
    for method, path, body, fields in [
        ("POST", "/api/workflows", with_body(BIG), ["action.config.body.n"]),
        ("PUT", f"/api/workflows/{wid}", with_body(SMALL), ["action.config.body.n"]),
        ("POST", f"/api/workflows/{wid}/run", {"payload": {"a": [1, {"b": BIG}]}}, ["payload.a.1.b"]),
        ("POST", "/api/workflows/dry-run", dry, ["payload.x", "workflow.action.config.body.n"]),
        ("POST", f"/api/workflows/{wid}/run", {"payload": 10**30}, ["payload"]),
    ]:
        assert await refused(await client.request(method, path, json=body, headers=auth)) == fields, (method, path)
    # Nothing was written by the refused requests: still version 1.
    current = await (await client.get(f"/api/workflows/{wid}", headers=auth)).json()
    assert current["data"]["version"] == 1 and current["data"]["action"]["config"]["body"] == {"n": 2**63 - 1}


async def test_the_64_bit_bounds_themselves_go_through_exact(gw: Gateway, tenant_id: uuid.UUID, bus: Bus):
    auth = gw.auth(tenant_id)
    wid = (await (await gw.client.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=auth)).json())["data"]["id"]
    payload = {"max": 2**63 - 1, "min": -(2**63)}
    resp = await gw.client.post(f"/api/workflows/{wid}/run", json={"payload": payload}, headers=auth)
    assert resp.status == 202, await resp.text()
    msg = await bus.js.get_last_msg("EVENTS", f"events.{tenant_id}.{wid}")
    assert json.loads(msg.data or b"")["payload"] == payload


async def test_webhook_ingest_keeps_its_status_table_and_carries_big_integers(
    gw: Gateway, tenant_id: uuid.UUID, bus: Bus
):
    workflow_id, secret = await create_webhook_workflow(gw, tenant_id)
    body = '{"order_id": 1180591620717411303424}'
    resp = await gw.client.post(f"/hooks/{workflow_id}", data=body.encode(), headers=signed(secret, body))
    assert resp.status == 202, await resp.text()
    msg = await bus.js.get_last_msg("EVENTS", f"events.{tenant_id}.{workflow_id}")
    assert json.loads(msg.data or b"")["payload"] == {"order_id": 2**70}


async def test_auth_credentials_refuse_them_too(auth_app: TestClient[Any, Any], nats_url: str):
    user = await register_and_login(auth_app)
    resp = await add_credential(auth_app, user, "api", "http", {"headers": {"X-Api-Key": BIG}})
    assert await refused(resp) == ["secret.headers.X-Api-Key"]
    listed = await (await auth_app.get("/api/credentials", headers=bearer(user["token"]))).json()
    assert listed["data"] == []
