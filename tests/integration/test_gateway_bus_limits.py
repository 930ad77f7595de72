"""Ingest at the bus's limits: a full stream is 503 with Retry-After (then 202 again), an oversized message 413.

The EVENTS stream is bounded in the test (``max_bytes`` with
``discard: new``), so JetStream answers the publish with a PubAck error; and
a body whose message only goes over ``max_payload`` with its headers must be
refused by the gateway, since the server would reset the shared connection.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from nats.js import api as js_api

from libs.common.bus import Bus
from services.gateway.keys import BUS
from tests.helpers.gateway_app import Gateway, create_webhook_workflow, running_gateway, tenant
from tests.helpers.webhooks import signed


@pytest.fixture
async def gw(database_url: str, nats_url: str, bus: Bus) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url, nats_url, retry_after_seconds=3) as gateway:
        yield gateway


async def test_a_full_stream_is_503_with_retry_after_then_202_once_there_is_room(
    gw: Gateway, tenant_id: uuid.UUID, bus: Bus
):
    wid, secret = await create_webhook_workflow(gw, tenant_id)
    first = await gw.client.post(f"/hooks/{wid}", data=b'{"n": 1}', headers=signed(secret, '{"n": 1}'))
    assert first.status == 202

    info = await bus.js.stream_info("EVENTS")
    config = info.config
    config.max_bytes, config.discard = int(info.state.bytes) + 16, js_api.DiscardPolicy.NEW
    await bus.js.update_stream(config)
    stored = int(info.state.messages)

    for _ in range(3):
        resp = await gw.client.post(f"/hooks/{wid}", data=b'{"n": 2}', headers=signed(secret, '{"n": 2}'))
        body = await resp.json()
        assert resp.status == 503, body
        assert resp.headers["Retry-After"] == "3" and body["error"]["code"] == "service_unavailable"
    run = await gw.client.post(f"/api/workflows/{wid}/run", json={"payload": {}}, headers=gw.auth(tenant_id))
    assert run.status == 503 and run.headers["Retry-After"] == "3"
    assert int((await bus.js.stream_info("EVENTS")).state.messages) == stored  # nothing half-accepted

    config.max_bytes = -1
    await bus.js.update_stream(config)
    again = await gw.client.post(f"/hooks/{wid}", data=b'{"n": 3}', headers=signed(secret, '{"n": 3}'))
    assert again.status == 202, await again.text()
    event_id = (await again.json())["data"]["event_id"]
    msg = await bus.js.get_last_msg("EVENTS", f"events.{tenant_id}.{wid}")
    assert event_id.encode() in (msg.data or b"")


async def test_a_message_over_max_payload_is_413_and_the_shared_connection_survives(gw: Gateway, database_url: str):
    wid, secret = await create_webhook_workflow(gw, await tenant(database_url))
    nc = gw.app[BUS].nc
    reconnects = nc.stats["reconnects"]
    limit = nc.max_payload
    statuses: dict[int, int] = {}
    # From comfortably under the limit to over it; a stretch of sizes in between fits the payload alone
    # but not payload plus headers: sent, those would make the server reset the connection.
    for size in range(limit - 700, limit - 149, 50):
        body = '"' + "x" * (size - 2) + '"'
        resp = await gw.client.post(f"/hooks/{wid}", data=body.encode(), headers=signed(secret, body))
        statuses[size] = resp.status
        if resp.status == 413:
            details = (await resp.json())["error"]["details"]
            assert details["limit"] == limit and details["size"] > limit
    assert set(statuses.values()) == {202, 413}, statuses
    assert nc.is_connected and nc.stats["reconnects"] == reconnects
    small = await gw.client.post(f"/hooks/{wid}", data=b"{}", headers=signed(secret, "{}"))
    assert small.status == 202
