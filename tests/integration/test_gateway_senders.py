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
from collections.abc import Callable
from typing import Any

from aiohttp import ClientResponse

from libs.common.bus import Bus
from libs.common.models.events import event_id_for
from tests.helpers.gateway_app import WEBHOOK_WORKFLOW, Gateway, create_webhook_workflow, running_gateway, tenant
from tests.helpers.wait import wait_until
from tests.unit import test_gateway_senders as documented

SENDER_SECRET = "s3cr3t-from-the-sender"


async def _create(gw: Gateway, tenant_id: uuid.UUID, trigger: dict[str, Any]) -> ClientResponse:
    """``POST /api/workflows`` of a webhook workflow with ``trigger``."""
    return await gw.client.post(
        "/api/workflows", json={**WEBHOOK_WORKFLOW, "trigger": trigger}, headers=gw.auth(tenant_id)
    )


async def _set_secret(gw: Gateway, tenant_id: uuid.UUID, workflow_id: str, secret: str) -> ClientResponse:
    """``POST /api/workflows/{id}/webhook-secret`` setting ``secret``."""
    url = f"/api/workflows/{workflow_id}/webhook-secret"
    return await gw.client.post(url, json={"secret": secret}, headers=gw.auth(tenant_id))


async def _workflow(
    gw: Gateway, tenant_id: uuid.UUID, trigger: dict[str, Any], secret: str | None = SENDER_SECRET
) -> str:
    workflow_id, _ = await create_webhook_workflow(gw, tenant_id, trigger=trigger)
    if secret is not None:
        rotated = await _set_secret(gw, tenant_id, workflow_id, secret)
        assert rotated.status == 200, await rotated.text()
        assert (await rotated.json())["data"]["webhook"]["secret"] == secret
    return workflow_id


def _hex(body: bytes, secret: str = SENDER_SECRET, prefix: bytes = b"") -> str:
    return hmac.new(secret.encode(), prefix + body, hashlib.sha256).hexdigest()


def _stripe(body: bytes, t: int, secret: str = SENDER_SECRET) -> dict[str, str]:
    """Stripe's signature header for ``body`` sent at ``t``."""
    return {"Stripe-Signature": f"t={t},v1={_hex(body, secret, f'{t}.'.encode())}"}


def _slack(body: bytes, t: int | str, secret: str = SENDER_SECRET) -> dict[str, str]:
    """Slack's timestamp and signature headers for ``body`` sent at ``t``."""
    return {"X-Slack-Request-Timestamp": str(t), "X-Slack-Signature": "v0=" + _hex(body, secret, f"v0:{t}:".encode())}


def _shopify_mac(body: bytes, secret: str = SENDER_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


async def _post(gw: Gateway, workflow_id: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    resp = await gw.client.post(
        f"/hooks/{workflow_id}", data=body, headers={"Content-Type": "application/json", **headers}
    )
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None)


async def test_generic_hmac(gw: Gateway, tenant_id: uuid.UUID) -> None:
    body = b'{"id":820982911946154508}'
    generic = await _workflow(
        gw, tenant_id, {"type": "webhook", "verify": "hmac-sha256", "hmac": {"header": "X-Sig", "prefix": "sha256="}}
    )
    status, out = await _post(gw, generic, body, {"X-Sig": "sha256=" + _hex(body)})
    assert status == 202, out
    # No delivery id: the body's hash is the dedup key, so the same body again is a duplicate.
    again = await _post(gw, generic, body, {"X-Sig": "sha256=" + _hex(body)})
    assert again[1]["data"] == {"event_id": out["data"]["event_id"], "duplicate": True}
    assert (await _post(gw, generic, body, {"X-Sig": _hex(body)}))[0] == 401  # prefix missing


async def test_slack_url_verification_is_answered_not_published(gw: Gateway, tenant_id: uuid.UUID, bus: Bus) -> None:
    workflow_id = await _workflow(gw, tenant_id, {"type": "webhook", "verify": "slack"})
    before = (await bus.js.stream_info("EVENTS")).state.messages
    token = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    challenge = json.dumps({"token": "x", "challenge": token, "type": "url_verification"}).encode()
    status, out = await _post(gw, workflow_id, challenge, _slack(challenge, int(time.time())))
    assert status == 200 and out == {"challenge": token}
    assert (await bus.js.stream_info("EVENTS")).state.messages == before  # answered, not published


async def test_unverified_webhooks_warn_and_standard_secrets_stay_whsec(gw: Gateway, tenant_id: uuid.UUID) -> None:
    resp = await _create(gw, tenant_id, {"type": "webhook", "verify": "none"})
    data = (await resp.json())["data"]
    assert resp.status == 201 and "not authenticated" in data["warnings"][0]
    status, out = await _post(gw, data["id"], b'{"n":1}', {"Idempotency-Key": "k-1"})
    assert status == 202 and out["data"]["event_id"] == str(event_id_for(data["id"], "k-1"))

    standard = await _workflow(gw, tenant_id, {"type": "webhook"}, secret=None)
    refused = await _set_secret(gw, tenant_id, standard, "not-a-whsec")
    assert refused.status == 409 and (await refused.json())["error"]["code"] == "not_a_standard_secret"
    plain = await gw.client.get(f"/api/workflows/{standard}", headers=gw.auth(tenant_id))
    assert "warnings" not in (await plain.json())["data"]
    bad = await _create(gw, tenant_id, {"type": "webhook", "verify": "github", "hmac": {"header": "X"}})
    assert bad.status == 422


# The providers' documented examples (tests/unit/test_gateway_senders.py), sent whole through the gateway.
# Slack's example is from 2018: a gateway whose tolerance reaches back that far takes it.
GITHUB_SECRET, SLACK_SECRET = documented.GITHUB_SECRET.decode(), documented.SLACK_SECRET.decode()
TEN_YEARS = 10 * 366 * 24 * 3600


async def test_documented_examples_are_accepted_whole(database_url: str, nats_url: str, bus: Bus) -> None:
    async with running_gateway(database_url, nats_url, webhook_tolerance_seconds=TEN_YEARS) as gateway:
        tenant_id = await tenant(database_url)
        github = await _workflow(gateway, tenant_id, {"type": "webhook", "verify": "github"}, secret=GITHUB_SECRET)
        # Spaces inside a secret are kept (GitHub's example has them); at either end they are a paste slip.
        for padded in (GITHUB_SECRET + " ", " " + GITHUB_SECRET, GITHUB_SECRET + "\n"):
            refused = await _set_secret(gateway, tenant_id, github, padded)
            assert refused.status == 422, padded
        text = {"Content-Type": "text/plain"}
        headers = {**text, "X-Hub-Signature-256": documented.GITHUB_SIGNATURE, "X-GitHub-Delivery": "gh-doc-1"}
        status, out = await _post(gateway, github, documented.GITHUB_BODY, headers)
        assert status == 202, out
        assert out["data"] == {"event_id": str(event_id_for(github, "gh-doc-1")), "duplicate": False}

        slack = await _workflow(gateway, tenant_id, {"type": "webhook", "verify": "slack"}, secret=SLACK_SECRET)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        signed = {
            **form,
            "X-Slack-Request-Timestamp": documented.SLACK_TIMESTAMP,
            "X-Slack-Signature": documented.SLACK_SIGNATURE,
        }
        status, out = await _post(gateway, slack, documented.SLACK_BODY, signed)
        assert status == 202, out
        # A slash command has no event_id: the body's hash is the dedup key, so the same request is a duplicate.
        again = await _post(gateway, slack, documented.SLACK_BODY, signed)
        assert again[1]["data"] == {"event_id": out["data"]["event_id"], "duplicate": True}
        # The published payload is the form body as a JSON string.
        sub = await bus.js.subscribe(f"events.{tenant_id}.{slack}", durable=None)
        msg = await sub.next_msg(timeout=5)
        assert json.loads(msg.data)["payload"] == documented.SLACK_BODY.decode()


async def test_each_scheme_refuses_a_bad_signature_and_a_stale_timestamp(gw: Gateway, tenant_id: uuid.UUID) -> None:
    body = b'{"id":"evt_9","event_id":"Ev9"}'
    now = int(time.time())
    stale_at = now - gw.settings.webhook_tolerance_seconds - 60
    bad: dict[str, dict[str, str]] = {
        "github": {"X-Hub-Signature-256": "sha256=" + _hex(body, secret="wrong"), "X-GitHub-Delivery": "d"},
        "stripe": _stripe(body, now, secret="wrong"),
        "shopify": {"X-Shopify-Hmac-Sha256": _shopify_mac(body, secret="wrong")},
        "slack": _slack(body, now, secret="wrong"),
        "hmac-sha256": {"X-Signature": _hex(body, secret="wrong")},
    }
    stale = {"stripe": _stripe(body, stale_at), "slack": _slack(body, stale_at)}
    for scheme, headers in bad.items():
        workflow_id = await _workflow(gw, tenant_id, {"type": "webhook", "verify": scheme})
        status, out = await _post(gw, workflow_id, body, headers)
        assert (status, out["error"]["code"]) == (401, "invalid_signature"), (scheme, out)
        assert "webhook-secret" in out["error"]["message"], scheme  # says which secret to set
        if scheme in stale:
            status, out = await _post(gw, workflow_id, body, stale[scheme])
            assert status == 401 and "tolerance" in out["error"]["message"], (scheme, out)


async def test_redelivery_with_the_same_delivery_id_is_a_duplicate(gw: Gateway, tenant_id: uuid.UUID, bus: Bus) -> None:
    """Each sender's retry of one delivery: a new signature (and timestamp), the same delivery id."""
    before = (await bus.js.stream_info("EVENTS")).state.messages
    first, second = int(time.time()) - 5, int(time.time())

    def github(body: bytes, _t: int) -> dict[str, str]:
        return {"X-Hub-Signature-256": "sha256=" + _hex(body), "X-GitHub-Delivery": "gh-7"}

    def shopify(body: bytes, _t: int) -> dict[str, str]:
        return {"X-Shopify-Hmac-Sha256": _shopify_mac(body), "X-Shopify-Webhook-Id": "shop-7"}

    cases: dict[str, tuple[Callable[[bytes, int], dict[str, str]], bytes, str]] = {
        "github": (github, b'{"n":1}', "gh-7"),
        "stripe": (_stripe, b'{"id":"evt_7","type":"charge.succeeded"}', "evt_7"),
        "shopify": (shopify, b'{"n":1}', "shop-7"),
        "slack": (_slack, b'{"type":"event_callback","event_id":"Ev07"}', "Ev07"),
    }
    for scheme, (sign, body, delivery) in cases.items():
        workflow_id = await _workflow(gw, tenant_id, {"type": "webhook", "verify": scheme})
        status, out = await _post(gw, workflow_id, body, sign(body, first))
        assert status == 202 and out["data"] == {
            "event_id": str(event_id_for(workflow_id, delivery)),
            "duplicate": False,
        }, (scheme, out)
        retry = {**sign(body, second), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        status, out = await _post(gw, workflow_id, body, retry)
        assert status == 202 and out["data"]["duplicate"] is True, (scheme, out)
        # The workflow is shown as it was sent, verify included.
        shown = await gw.client.get(f"/api/workflows/{workflow_id}", headers=gw.auth(tenant_id))
        assert (await shown.json())["data"]["trigger"] == {"type": "webhook", "verify": scheme}
    assert (await bus.js.stream_info("EVENTS")).state.messages == before + len(cases)


async def test_a_sender_workflow_whose_secret_was_never_set_refuses_the_senders_requests(
    gw: Gateway, tenant_id: uuid.UUID, bus: Bus
) -> None:
    """Made with ``verify: stripe`` and left with the generated secret: Stripe's own signatures fail, with a
    401 ``invalid_signature`` that says which secret to set; once it is set, the same request goes through."""
    workflow_id = await _workflow(gw, tenant_id, {"type": "webhook", "verify": "stripe"}, secret=None)
    before = (await bus.js.stream_info("EVENTS")).state.messages
    body = b'{"id":"evt_unset","type":"charge.succeeded"}'
    now = int(time.time())
    signed = _stripe(body, now)
    status, out = await _post(gw, workflow_id, body, signed)
    assert status == 401 and out["error"]["code"] == "invalid_signature", out
    assert "POST /api/workflows/{id}/webhook-secret" in out["error"]["message"]
    assert SENDER_SECRET not in json.dumps(out)
    unsigned = await _post(gw, workflow_id, body, {})
    assert unsigned[0] == 401 and "missing Stripe-Signature" in unsigned[1]["error"]["message"]
    assert (await bus.js.stream_info("EVENTS")).state.messages == before

    rotated = await _set_secret(gw, tenant_id, workflow_id, SENDER_SECRET)
    assert rotated.status == 200

    async def accepted() -> bool:
        return (await _post(gw, workflow_id, body, signed))[0] == 202

    await wait_until(accepted, timeout=10, message="the set secret to be used")
