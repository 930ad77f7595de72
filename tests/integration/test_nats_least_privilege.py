"""Least privilege on a real nats-server running the permission table (libs/common/bus/permissions.py).

The gateway and the scheduler cannot create, update or delete a stream or a consumer, cannot
subscribe to another identity's inbox, and cannot read a stream that is not theirs (get its
messages, or create a consumer on it); the attack from the security issue (a stream that
captures the executor's inbox, where decrypted credentials arrive) is refused.  The
provisioner may manage the platform's streams and nothing else.  Whatever a probe tried, the
streams are left as the provisioning step made them.
"""

from __future__ import annotations

import json

import pytest
from nats.js.errors import NotFoundError

from libs.common.bus.permissions import ALL_IDENTITIES, inbox_prefix
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
    nc = await secured_nats.client(identity, errors)
    try:
        probes = {**management_probes(inbox_prefix("executor")), **reading_probes(NOT_THEIRS[identity])}
        assert await refused_requests(nc, errors, probes) == []
        others = [f"{inbox_prefix(i)}.>" for i in ALL_IDENTITIES if i != identity]
        assert await refused_subscriptions(nc, errors, [*others, "svc.auth.>", "events.>", "dlq.>"]) == []
        if identity == "scheduler":
            # Its one consumer grant (ephemeral consumers for the change feed) admits no durable name.
            durable = {"stream_name": "WORKFLOW_CHANGES", "config": {"durable_name": "kept", "ack_policy": "none"}}
            answer = await answered(nc, f"{API}.CONSUMER.CREATE.WORKFLOW_CHANGES", json.dumps(durable).encode())
            assert answer["error"]["err_code"] == 10020
    finally:
        await nc.close()
    await _assert_untouched(secured_nats)


async def test_the_probes_are_answered_for_an_identity_that_may(secured_nats: SecuredNats) -> None:
    """The probes are well-formed requests: the same reads, sent as admin, are answered."""
    await _seed(secured_nats)
    errors: list[str] = []
    admin = await secured_nats.client("admin", errors)
    try:
        got = await answered(admin, f"{API}.STREAM.MSG.GET.EVENTS", json.dumps({"seq": 1}).encode())
        assert got["message"]["subject"] == "events.t1.w1"
        allowed = {f"{API}.STREAM.INFO.DLQ": b"", f"{API}.STREAM.MSG.GET.DLQ": json.dumps({"seq": 1}).encode()}
        assert sorted(await refused_requests(admin, errors, allowed)) == sorted(allowed)
        assert errors == []
    finally:
        await admin.close()


async def test_a_stream_capturing_the_executors_inbox_is_refused(secured_nats: SecuredNats) -> None:
    """The issue's attack, with the client library the gateway runs: no stream, so no captured reply."""
    errors: list[str] = []
    gateway = await secured_nats.client("gateway", errors)
    executor = await secured_nats.client("executor")
    try:
        with pytest.raises(Exception):  # noqa: B017 - the request is dropped: nats-py times out
            await gateway.jetstream(timeout=1).add_stream(
                name=ATTACK_STREAM, subjects=[f"{inbox_prefix('executor')}.>"]
            )
        # A reply the executor gets on its inbox (here a stream info) would have been captured.
        info = await answered(executor, f"{API}.STREAM.INFO.EVENTS")
        assert info["config"]["name"] == "EVENTS"
        assert any("permissions violation" in e.lower() and ATTACK_STREAM.lower() in e.lower() for e in errors)
    finally:
        await gateway.close()
        await executor.close()
    async with secured_nats.connected("admin") as admin:
        with pytest.raises(NotFoundError):
            await admin.js.stream_info(ATTACK_STREAM)


async def test_the_provisioner_manages_the_platform_streams_and_nothing_else(secured_nats: SecuredNats) -> None:
    await _seed(secured_nats)
    done = await secured_nats.provision()  # again: idempotent
    assert done == ["stream EVENTS", "stream DLQ", "stream WORKFLOW_CHANGES", "consumer EVENTS/executor"]
    errors: list[str] = []
    nc = await secured_nats.client("provisioner", errors)
    try:
        probes = management_probes(inbox_prefix("executor"))
        harmful = {s: b for s, b in probes.items() if ".CREATE.SNOOP" in s or ".DELETE." in s or ".PURGE." in s}
        assert await refused_requests(nc, errors, {**harmful, **reading_probes(["EVENTS", "DLQ"])}) == []
        assert await refused_subscriptions(nc, errors, ["events.>", f"{inbox_prefix('executor')}.>"]) == []
    finally:
        await nc.close()
    await _assert_untouched(secured_nats)
