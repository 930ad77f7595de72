"""Webhooks from GitHub, Stripe, Shopify, Slack, any HMAC-SHA256 sender, or unverified, through the gateway
(real NATS and Postgres): the sender's own signature with the secret it gave the user, its delivery id as
the dedup key, 401 for a bad signature or a stale timestamp, Slack's url_verification answered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from libs.common.bus import Bus
from libs.common.models.events import event_id_for
from tests.helpers.gateway_app import WEBHOOK_WORKFLOW, Gateway, tenant

SENDER_SECRET = "s3cr3t-from-the-sender"


async def _workflow(
    gw: Gateway, tenant_id: uuid.UUID, trigger: dict[str, Any], secret: str | None = SENDER_SECRET
) -> str:
    resp = await gw.client.post(
        "/api/workflows", json={**WEBHOOK_WORKFLOW, "trigger": trigger}, headers=gw.auth(tenant_id)
    )
    assert resp.status == 201, await resp.text()
    workflow_id = str((await resp.json())["data"]["id"])
    if secret is not None:
        rotated = await gw.client.post(
            f"/api/workflows/{workflow_id}/webhook-secret", json={"secret": secret}, headers=gw.auth(tenant_id)
        )
        assert rotated.status == 200, await rotated.text()
        assert (await rotated.json())["data"]["webhook"]["secret"] == secret
    return workflow_id


def _hex(body: bytes, secret: str = SENDER_SECRET, prefix: bytes = b"") -> str:
    return hmac.new(secret.encode(), prefix + body, hashlib.sha256).hexdigest()


async def _post(gw: Gateway, workflow_id: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    resp = await gw.client.post(
        f"/hooks/{workflow_id}", data=body, headers={"Content-Type": "application/json", **headers}
    )
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None)


async def test_github_delivery_id_is_the_dedup_key(gw: Gateway, database_url: str, bus: Bus) -> None:
    tenant_id = await tenant(database_url)
    workflow_id = await _workflow(gw, tenant_id, {"type": "webhook", "verify": "github"})
    body = b'{"ref":"refs/heads/main","after":"abc"}'
    headers = {"X-Hub-Signature-256": "sha256=" + _hex(body), "X-GitHub-Delivery": "d-1"}
    status, out = await _post(gw, workflow_id, body, headers)
    assert status == 202, out
    assert out["data"] == {"event_id": str(event_id_for(workflow_id, "d-1")), "duplicate": False}
    again = await _post(gw, workflow_id, body, headers)
    assert again[0] == 202 and again[1]["data"]["duplicate"] is True
    status, out = await _post(gw, workflow_id, body, {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert status == 401 and out["error"]["code"] == "invalid_signature"
    # The workflow is shown as it was sent, verify included.
    shown = await gw.client.get(f"/api/workflows/{workflow_id}", headers=gw.auth(tenant_id))
    assert (await shown.json())["data"]["trigger"] == {"type": "webhook", "verify": "github"}


async def test_stripe_signature_timestamp_and_event_id(gw: Gateway, database_url: str) -> None:
    tenant_id = await tenant(database_url)
    workflow_id = await _workflow(gw, tenant_id, {"type": "webhook", "verify": "stripe"})
    body = b'{"id":"evt_123","type":"charge.succeeded"}'
    now = int(time.time())
    fresh = {"Stripe-Signature": f"t={now},v1={_hex(body, prefix=f'{now}.'.encode())}"}
    status, out = await _post(gw, workflow_id, body, fresh)
    assert status == 202 and out["data"]["event_id"] == str(event_id_for(workflow_id, "evt_123"))
    stale_at = now - 3600
    stale = {"Stripe-Signature": f"t={stale_at},v1={_hex(body, prefix=f'{stale_at}.'.encode())}"}
    status, out = await _post(gw, workflow_id, body, stale)
    assert status == 401 and "tolerance" in out["error"]["message"]


async def test_shopify_and_generic_hmac(gw: Gateway, database_url: str) -> None:
    tenant_id = await tenant(database_url)
    shop = await _workflow(gw, tenant_id, {"type": "webhook", "verify": "shopify"})
    body = b'{"id":820982911946154508}'
    mac = base64.b64encode(hmac.new(SENDER_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    status, out = await _post(gw, shop, body, {"X-Shopify-Hmac-Sha256": mac, "X-Shopify-Webhook-Id": "w-9"})
    assert status == 202 and out["data"]["event_id"] == str(event_id_for(shop, "w-9"))
    assert (await _post(gw, shop, body, {"X-Shopify-Hmac-Sha256": base64.b64encode(b"x" * 32).decode()}))[0] == 401

    generic = await _workflow(
        gw, tenant_id, {"type": "webhook", "verify": "hmac-sha256", "hmac": {"header": "X-Sig", "prefix": "sha256="}}
    )
    status, out = await _post(gw, generic, body, {"X-Sig": "sha256=" + _hex(body)})
    assert status == 202, out
    # No delivery id: the body's hash is the dedup key, so the same body again is a duplicate.
    again = await _post(gw, generic, body, {"X-Sig": "sha256=" + _hex(body)})
    assert again[1]["data"] == {"event_id": out["data"]["event_id"], "duplicate": True}
    assert (await _post(gw, generic, body, {"X-Sig": _hex(body)}))[0] == 401  # prefix missing


async def test_slack_signature_and_url_verification(gw: Gateway, database_url: str, bus: Bus) -> None:
    tenant_id = await tenant(database_url)
    workflow_id = await _workflow(gw, tenant_id, {"type": "webhook", "verify": "slack"})
    before = (await bus.js.stream_info("EVENTS")).state.messages
    ts = str(int(time.time()))
    challenge = (
        b'{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}'
    )
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + _hex(challenge, prefix=f"v0:{ts}:".encode()),
    }
    status, out = await _post(gw, workflow_id, challenge, headers)
    assert status == 200 and out == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert (await bus.js.stream_info("EVENTS")).state.messages == before  # answered, not published
    event = b'{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"message"}}'
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + _hex(event, prefix=f"v0:{ts}:".encode())}
    status, out = await _post(gw, workflow_id, event, headers)
    assert status == 202 and out["data"]["event_id"] == str(event_id_for(workflow_id, "Ev08MFMKH6"))
    forged = {**headers, "X-Slack-Signature": "v0=" + _hex(event, secret="wrong", prefix=f"v0:{ts}:".encode())}
    assert (await _post(gw, workflow_id, event, forged))[0] == 401


async def test_unverified_webhooks_warn_and_standard_secrets_stay_whsec(gw: Gateway, database_url: str) -> None:
    tenant_id = await tenant(database_url)
    resp = await gw.client.post(
        "/api/workflows",
        json={**WEBHOOK_WORKFLOW, "trigger": {"type": "webhook", "verify": "none"}},
        headers=gw.auth(tenant_id),
    )
    data = (await resp.json())["data"]
    assert resp.status == 201 and "not authenticated" in data["warnings"][0]
    status, out = await _post(gw, data["id"], b'{"n":1}', {"Idempotency-Key": "k-1"})
    assert status == 202 and out["data"]["event_id"] == str(event_id_for(data["id"], "k-1"))

    standard = await _workflow(gw, tenant_id, {"type": "webhook"}, secret=None)
    refused = await gw.client.post(
        f"/api/workflows/{standard}/webhook-secret", json={"secret": "not-a-whsec"}, headers=gw.auth(tenant_id)
    )
    assert refused.status == 409 and (await refused.json())["error"]["code"] == "not_a_standard_secret"
    plain = await gw.client.get(f"/api/workflows/{standard}", headers=gw.auth(tenant_id))
    assert "warnings" not in (await plain.json())["data"]
    bad = await gw.client.post(
        "/api/workflows",
        json={**WEBHOOK_WORKFLOW, "trigger": {"type": "webhook", "verify": "github", "hmac": {"header": "X"}}},
        headers=gw.auth(tenant_id),
    )
    assert bad.status == 422
