"""Webhook ingest against real NATS and Postgres (issue 4, acceptance 1-3)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope, Trigger, event_id_for, msg_id_for
from services.gateway.keys import CACHE
from tests.helpers.factories import fetchval_once
from tests.helpers.gateway_app import Gateway, create_webhook_workflow, running_gateway, tenant
from tests.helpers.wait import wait_until
from tests.helpers.webhooks import signed


async def stream_messages(bus: Bus, stream: str = "EVENTS") -> int:
    info = await bus.js.stream_info(stream)
    return int(info.state.messages)


async def test_signed_webhook_is_stored_once_with_msg_id_and_traceparent(gw: Gateway, tenant_id: uuid.UUID, bus: Bus):
    workflow_id, secret = await create_webhook_workflow(gw, tenant_id)
    body = '{"order_id": 42, "note": "caf\u00e9 \u2615"}'
    headers = signed(secret, body, msg_id="msg_order_42")

    resp = await gw.client.post(f"/hooks/{workflow_id}", data=body.encode(), headers=headers)

    assert resp.status == 202, await resp.text()
    out = await resp.json()
    expected_id = event_id_for(workflow_id, "msg_order_42")
    assert out["data"] == {"event_id": str(expected_id), "duplicate": False}
    traceparent = resp.headers["traceparent"]
    msg = await bus.js.get_last_msg("EVENTS", f"events.{tenant_id}.{workflow_id}")
    assert msg.headers is not None
    assert msg.headers["Nats-Msg-Id"] == msg_id_for(workflow_id, "msg_order_42")
    # Same trace as the response's server span.
    assert msg.headers["traceparent"].split("-")[1] == traceparent.split("-")[1]
    assert set(msg.headers) == {"Nats-Msg-Id", "traceparent"}  # no trace state or baggage from nowhere
    envelope = EventEnvelope.model_validate_json(msg.data or b"")
    assert envelope.event_id == expected_id
    assert envelope.trigger is Trigger.WEBHOOK
    assert envelope.workflow_version == 1
    assert envelope.tenant_id == tenant_id
    assert envelope.payload == {"order_id": 42, "note": "caf\u00e9 \u2615"}

    # The same webhook id again is one message, and the first event id.
    again = await gw.client.post(f"/hooks/{workflow_id}", data=body.encode(), headers=headers)
    assert again.status == 202 and (await again.json())["data"] == {"event_id": str(expected_id), "duplicate": True}
    assert await stream_messages(bus) == 1


OTHER_SECRET = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
TOO_LARGE = b'{"blob": "' + b"x" * (2 * 1024 * 1024) + b'"}'
Attempt = Callable[[str], tuple[bytes, dict[str, str]]]  # the workflow's secret -> (body, headers)


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        pytest.param(
            lambda s: (b'{"amount": 1000}', signed(s, '{"amount": 1}')), 401, "invalid_signature", id="tampered"
        ),
        pytest.param(
            lambda s: (b"{}", signed(s, "{}", at=datetime.now(UTC) - timedelta(seconds=301))),
            401,
            "invalid_signature",
            id="stale",
        ),
        pytest.param(lambda s: (b"{}", signed(OTHER_SECRET, "{}")), 401, "invalid_signature", id="wrong_secret"),
        pytest.param(
            lambda s: (b"{}", {k: v for k, v in signed(s, "{}").items() if k != "webhook-signature"}),
            401,
            "invalid_signature",
            id="missing_header",
        ),
        pytest.param(lambda s: (TOO_LARGE, signed(s, TOO_LARGE.decode())), 413, "payload_too_large", id="too_large"),
    ],
)
async def test_rejected_webhooks_publish_nothing(
    gw: Gateway, tenant_id: uuid.UUID, bus: Bus, make: Attempt, status: int, code: str
):
    workflow_id, secret = await create_webhook_workflow(gw, tenant_id)
    body, headers = make(secret)

    resp = await gw.client.post(f"/hooks/{workflow_id}", data=body, headers=headers)

    assert resp.status == status
    assert (await resp.json())["error"]["code"] == code
    assert await stream_messages(bus) == 0


async def test_unknown_and_inactive_workflows_get_the_same_404(gw: Gateway, tenant_id: uuid.UUID, bus: Bus):
    workflow_id, secret = await create_webhook_workflow(gw, tenant_id, is_active=False)

    inactive = await gw.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(secret, "{}"))
    unknown = await gw.client.post(f"/hooks/{uuid.uuid4()}", data="{}", headers=signed(secret, "{}"))
    garbage = await gw.client.post("/hooks/not-a-uuid", data="{}", headers=signed(secret, "{}"))

    assert inactive.status == unknown.status == garbage.status == 404
    assert await inactive.json() == await unknown.json() == await garbage.json()
    assert await stream_messages(bus) == 0


async def test_rate_limited_tenant_gets_429_with_retry_after(database_url: str, nats_url: str, bus: Bus):
    async with running_gateway(database_url, nats_url, webhook_burst=1, webhook_rate_per_second=0.05) as gw:
        tenant_id = await tenant(database_url)
        workflow_id, secret = await create_webhook_workflow(gw, tenant_id)
        other_id, other_secret = await create_webhook_workflow(gw, await tenant(database_url))

        first = await gw.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(secret, "{}"))
        limited = await gw.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(secret, "{}"))
        other = await gw.client.post(f"/hooks/{other_id}", data="{}", headers=signed(other_secret, "{}"))

        assert first.status == 202
        assert limited.status == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert (await limited.json())["error"]["code"] == "rate_limited"
        assert other.status == 202  # buckets are per tenant
        assert await stream_messages(bus) == 2


async def test_previous_secret_stays_valid_after_rotation(gw: Gateway, tenant_id: uuid.UUID, bus: Bus):
    workflow_id, old_secret = await create_webhook_workflow(gw, tenant_id)
    assert (await gw.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(old_secret, "{}"))).status == 202

    resp = await gw.client.post(f"/api/workflows/{workflow_id}/webhook-secret", headers=gw.auth(tenant_id))
    assert resp.status == 200
    rotated = (await resp.json())["data"]
    new_secret = rotated["webhook"]["secret"]
    until = datetime.fromisoformat(rotated["previous_valid_until"])
    assert new_secret != old_secret
    assert timedelta(hours=23, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=24)

    with_old = await gw.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(old_secret, "{}"))
    with_new = await gw.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(new_secret, "{}"))
    assert with_old.status == 202 and with_new.status == 202
    # Several signatures in one header: any valid one is enough.
    headers = signed(new_secret, "{}")
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert (await gw.client.post(f"/hooks/{workflow_id}", data="{}", headers=headers)).status == 202


async def test_a_disabled_workflow_stops_ingest_on_another_replica(database_url: str, nats_url: str, bus: Bus):
    async with (
        running_gateway(database_url, nats_url, cache_ttl_seconds=300) as a,
        running_gateway(database_url, nats_url, issuer=a.issuer, cache_ttl_seconds=300) as b,
    ):
        tenant_id = await tenant(database_url)
        workflow_id, secret = await create_webhook_workflow(a, tenant_id)
        assert (await a.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(secret, "{}"))).status == 202

        resp = await b.client.patch(
            f"/api/workflows/{workflow_id}", json={"is_active": False}, headers=b.auth(tenant_id)
        )
        assert resp.status == 200

        async def a_refuses() -> bool:
            r = await a.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(secret, "{}"))
            return r.status == 404

        # Replica A's warm cache (TTL 300 s) is invalidated by the change feed, not by expiry.
        await wait_until(a_refuses, timeout=10, message="replica A to see the workflow disabled")


async def test_warm_cache_serves_ingest_without_queries(gw: Gateway, database_url: str, bus: Bus, tenant_id: uuid.UUID):
    workflow_id, secret = await create_webhook_workflow(gw, tenant_id)
    cache = gw.app[CACHE]

    async def change_published() -> bool:
        return bool(await fetchval_once(database_url, "SELECT bool_and(published_at IS NOT NULL) FROM outbox"))

    # The creation's own change message invalidates the entry once; let it pass first.  The PubAck
    # (after which the relay marks the row) follows the change on the gateway's own connection.
    await wait_until(change_published, timeout=10, message="the creation on the change feed")
    assert (await gw.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(secret, "{}"))).status == 202
    misses = cache.misses
    for _ in range(20):
        resp = await gw.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(secret, "{}"))
        assert resp.status == 202
    assert cache.misses == misses  # every look-up came from memory
    assert await stream_messages(bus) == 21


async def test_non_json_body_is_carried_as_text(gw: Gateway, tenant_id: uuid.UUID, bus: Bus):
    workflow_id, secret = await create_webhook_workflow(gw, tenant_id)
    headers = signed(secret, "a=1&b=2")
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    resp = await gw.client.post(f"/hooks/{workflow_id}", data=b"a=1&b=2", headers=headers)
    assert resp.status == 202
    msg = await bus.js.get_last_msg("EVENTS", f"events.{tenant_id}.{workflow_id}")
    assert EventEnvelope.model_validate_json(msg.data or b"").payload == "a=1&b=2"
