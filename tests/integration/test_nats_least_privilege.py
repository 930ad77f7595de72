"""Least privilege on a real nats-server running the permission table (libs/common/bus/permissions.py).

The gateway and the scheduler cannot create, update or delete a stream or a consumer, cannot
subscribe to another identity's inbox, and cannot read a stream that is not theirs (get its
messages, or create a consumer on it); the attack from the security issue (a stream that
captures the executor's inbox, where decrypted credentials arrive) is refused.  The
provisioner may manage the platform's streams and nothing else.  Whatever a probe tried, the
streams are left as the provisioning step made them.

Only the executor's identity may ask auth for a credential, and JetStream still works for the services
that use it, each with only its run-time grants.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from deploy.local.nats_authz import render_authorization
from libs.common.bus.permissions import ALL_IDENTITIES, inbox_prefix
from libs.common.models.credentials import RESOLVE_SUBJECT, CredentialReply
from tests.helpers.auth_setup import add_credential, auth_client, auth_settings, register_and_login
from tests.helpers.nats_probes import (
    API,
    ATTACK_STREAM,
    answered,
    management_probes,
    reading_probes,
    refused_requests,
    refused_subscriptions,
)
from tests.helpers.secured_nats import SecuredNats


@asynccontextmanager
async def connect(secured: SecuredNats, identity: str, errors: list[str] | None = None) -> AsyncIterator[Client]:
    """``secured.client(identity, errors)`` for the ``async with`` block, closed at its end."""
    nc = await secured.client(identity, errors)
    try:
        yield nc
    finally:
        await nc.close()


# Streams each identity may not read (the scheduler reads WORKFLOW_CHANGES through ephemeral consumers).
NOT_THEIRS = {"gateway": ["EVENTS", "DLQ", "WORKFLOW_CHANGES"], "scheduler": ["EVENTS", "DLQ"]}


async def _seed(secured: SecuredNats) -> None:
    """One event and one dead letter, so a read that got through would have something to return."""
    async with secured.connected("admin") as admin:
        await admin.publish("events.t1.w1", b'{"secret": "payload"}', msg_id="seed-1")
        await admin.publish("dlq.t1.w1", b'{"dead": true}', msg_id="seed-2")


async def _assert_untouched(secured: SecuredNats) -> None:
    async with secured.connected("admin") as admin:
        with pytest.raises(NotFoundError):
            await admin.js.stream_info(ATTACK_STREAM)
        events = await admin.js.stream_info("EVENTS")
        assert events.config.subjects == ["events.>"] and events.state.messages == 1
        assert (await admin.js.stream_info("DLQ")).state.messages == 1
        assert [c.name for c in await admin.js.consumers_info("EVENTS")] == ["executor"]
        assert (await admin.js.consumer_info("EVENTS", "executor")).config.max_ack_pending == 4096
        assert await admin.js.consumers_info("WORKFLOW_CHANGES") == []


@pytest.mark.parametrize("identity", ["gateway", "scheduler"])
async def test_cannot_manage_read_or_snoop(secured_nats: SecuredNats, identity: str) -> None:
    await _seed(secured_nats)
    errors: list[str] = []
    async with connect(secured_nats, identity, errors) as nc:
        probes = {**management_probes(inbox_prefix("executor")), **reading_probes(NOT_THEIRS[identity])}
        assert await refused_requests(nc, errors, probes) == []
        others = [f"{inbox_prefix(i)}.>" for i in ALL_IDENTITIES if i != identity]
        assert await refused_subscriptions(nc, errors, [*others, "svc.auth.>", "events.>", "dlq.>"]) == []
        if identity == "scheduler":
            # Its one consumer grant (ephemeral consumers for the change feed) admits no durable name.
            durable = {"stream_name": "WORKFLOW_CHANGES", "config": {"durable_name": "kept", "ack_policy": "none"}}
            answer = await answered(nc, f"{API}.CONSUMER.CREATE.WORKFLOW_CHANGES", json.dumps(durable).encode())
            assert answer["error"]["err_code"] == 10020
    await _assert_untouched(secured_nats)


async def test_the_probes_are_answered_for_an_identity_that_may(secured_nats: SecuredNats) -> None:
    """The probes are well-formed requests: the same reads, sent as admin, are answered."""
    await _seed(secured_nats)
    errors: list[str] = []
    async with connect(secured_nats, "admin", errors) as admin:
        got = await answered(admin, f"{API}.STREAM.MSG.GET.EVENTS", json.dumps({"seq": 1}).encode())
        assert got["message"]["subject"] == "events.t1.w1"
        allowed = {f"{API}.STREAM.INFO.DLQ": b"", f"{API}.STREAM.MSG.GET.DLQ": json.dumps({"seq": 1}).encode()}
        assert sorted(await refused_requests(admin, errors, allowed)) == sorted(allowed)
        assert errors == []


async def test_a_stream_capturing_the_executors_inbox_is_refused(secured_nats: SecuredNats) -> None:
    """The issue's attack, with the client library the gateway runs: no stream, so no captured reply."""
    errors: list[str] = []
    async with connect(secured_nats, "gateway", errors) as gateway, connect(secured_nats, "executor") as executor:
        with pytest.raises(Exception):  # noqa: B017 - the request is dropped: nats-py times out
            await gateway.jetstream(timeout=1).add_stream(
                name=ATTACK_STREAM, subjects=[f"{inbox_prefix('executor')}.>"]
            )
        # A reply the executor gets on its inbox (here a stream info) would have been captured.
        info = await answered(executor, f"{API}.STREAM.INFO.EVENTS")
        assert info["config"]["name"] == "EVENTS"
        assert any("permissions violation" in e.lower() and ATTACK_STREAM.lower() in e.lower() for e in errors)
    async with secured_nats.connected("admin") as admin:
        with pytest.raises(NotFoundError):
            await admin.js.stream_info(ATTACK_STREAM)


async def test_the_provisioner_manages_the_platform_streams_and_nothing_else(secured_nats: SecuredNats) -> None:
    await _seed(secured_nats)
    done = await secured_nats.provision()  # again: idempotent
    assert done == ["stream EVENTS", "stream DLQ", "stream WORKFLOW_CHANGES", "consumer EVENTS/executor"]
    errors: list[str] = []
    async with connect(secured_nats, "provisioner", errors) as nc:
        probes = management_probes(inbox_prefix("executor"))
        harmful = {s: b for s, b in probes.items() if ".CREATE.SNOOP" in s or ".DELETE." in s or ".PURGE." in s}
        assert await refused_requests(nc, errors, {**harmful, **reading_probes(["EVENTS", "DLQ"])}) == []
        assert await refused_subscriptions(nc, errors, ["events.>", f"{inbox_prefix('executor')}.>"]) == []
    await _assert_untouched(secured_nats)


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
        async with (
            connect(secured_nats, "executor", executor_errors) as executor,
            connect(secured_nats, "gateway", gateway_errors) as gateway,
        ):
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


async def test_jetstream_still_works_for_the_services_that_use_it(secured_nats: SecuredNats) -> None:
    """On the provisioned streams: the gateway publishes (PubAck on its inbox), the executor pulls from its
    durable consumer and acks, each with only its run-time grants."""
    errors: list[str] = []
    async with (
        connect(secured_nats, "gateway", errors) as gateway,
        connect(secured_nats, "executor", errors) as executor,
    ):
        ack = await gateway.jetstream().publish("events.t1.w1", b"{}", headers={"Nats-Msg-Id": "m1"})
        assert ack.stream == "EVENTS" and ack.seq == 1
        sub = await executor.jetstream().pull_subscribe_bind("executor", stream="EVENTS")
        msgs = await sub.fetch(1, timeout=5)
        await msgs[0].ack_sync()
        assert msgs[0].data == b"{}"
        info = await executor.jetstream().consumer_info("EVENTS", "executor")
        assert info.num_ack_pending == 0 and info.num_pending == 0
        assert errors == []
