"""NATS authorization: only the executor's identity may ask auth for a credential."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid

import nats
import pytest
from nats.aio.msg import Msg

from deploy.local.nats_authz import render_authorization
from libs.common.bus.permissions import ALL_IDENTITIES, inbox_prefix
from libs.common.models.credentials import RESOLVE_SUBJECT, CredentialReply
from tests.helpers.auth_setup import add_credential, auth_client, auth_settings, register_and_login
from tests.helpers.nats_probes import refused_requests
from tests.helpers.secured_nats import SecuredNats

PASSWORDS = {name: secrets.token_urlsafe(12) for name in ALL_IDENTITIES}


def test_rendered_block_names_each_identity_once() -> None:
    block = render_authorization(PASSWORDS)
    assert block.startswith("authorization {")
    for identity, password in PASSWORDS.items():
        assert block.count(f'user = "{identity}"') == 1 and json.dumps(password) in block
    with pytest.raises(ValueError):
        render_authorization({"intruder": "x"})
    with pytest.raises(ValueError):
        render_authorization({"gateway": ""})


async def test_executor_may_resolve_and_gateway_may_not(secured_nats: SecuredNats, database_url: str) -> None:
    settings = auth_settings(database_url, secured_nats.url_for("auth"))
    async with auth_client(settings) as client:
        user = await register_and_login(client)
        resp = await add_credential(client, user, "w", "openweather", {"api_key": "k-123"})
        credential_id = (await resp.json())["data"]["id"]
        request = json.dumps({"tenant_id": user["tenant_id"], "credential_id": credential_id}).encode()

        executor_errors: list[str] = []
        gateway_errors: list[str] = []
        executor = await secured_nats.client("executor", executor_errors)
        gateway = await secured_nats.client("gateway", gateway_errors)
        try:
            # The gateway listens on the executor's inbox and on the private subject: both refused.
            snooped: list[bytes] = []

            async def snoop(msg: Msg) -> None:
                snooped.append(msg.data)

            await gateway.subscribe(f"{inbox_prefix('executor')}.>", cb=snoop)
            await gateway.subscribe("svc.auth.>", cb=snoop)
            await gateway.flush()

            reply = await executor.request(RESOLVE_SUBJECT, request, timeout=5)
            resolved = CredentialReply.model_validate_json(reply.data)
            assert resolved.ok and resolved.secret == {"api_key": "k-123"}

            # Its request is dropped unanswered, and the server reports the violation.
            assert await refused_requests(gateway, gateway_errors, {RESOLVE_SUBJECT: request}) == []
            assert any("subscription" in e.lower() for e in gateway_errors)
            assert snooped == []
            assert executor_errors == []
            # A wrong password is refused outright.
            with pytest.raises(Exception):  # noqa: B017 - nats-py raises several types here
                await asyncio.wait_for(
                    nats.connect(
                        f"nats://executor:wrong-{uuid.uuid4().hex}@127.0.0.1:{secured_nats.port}",
                        allow_reconnect=False,
                        max_reconnect_attempts=0,
                    ),
                    timeout=5,
                )
        finally:
            await executor.close()
            await gateway.close()


async def test_jetstream_still_works_for_the_services_that_use_it(secured_nats: SecuredNats) -> None:
    """On the provisioned streams: the gateway publishes (PubAck on its inbox), the executor pulls from its
    durable consumer and acks, each with only its run-time grants."""
    errors: list[str] = []
    gateway = await secured_nats.client("gateway", errors)
    executor = await secured_nats.client("executor", errors)
    try:
        ack = await gateway.jetstream().publish("events.t1.w1", b"{}", headers={"Nats-Msg-Id": "m1"})
        assert ack.stream == "EVENTS" and ack.seq == 1
        sub = await executor.jetstream().pull_subscribe_bind("executor", stream="EVENTS")
        msgs = await sub.fetch(1, timeout=5)
        await msgs[0].ack_sync()
        assert msgs[0].data == b"{}"
        info = await executor.jetstream().consumer_info("EVENTS", "executor")
        assert info.num_ack_pending == 0 and info.num_pending == 0
        assert errors == []
    finally:
        await gateway.close()
        await executor.close()
