"""The permission table (libs/common/bus/permissions.py) as data: least privilege, and what services need.

The integration tests prove nats-server enforces it (tests/integration/test_nats_least_privilege.py);
these pin down its shape, for every identity, without a server.
"""

from __future__ import annotations

import pytest

from libs.common.bus.permissions import (
    ADMIN,
    ALL_IDENTITIES,
    PRIVATE,
    PROVISIONER,
    SERVICES,
    default_layout,
    inbox_prefix,
    permissions,
)
from services.executor.provisioning import needs
from services.executor.settings import ExecutorSettings

MANAGE = (
    ".STREAM.CREATE.",
    ".STREAM.UPDATE.",
    ".STREAM.DELETE.",
    ".STREAM.PURGE.",
    ".CONSUMER.DURABLE.CREATE.",
    ".CONSUMER.DELETE.",
    ".STREAM.MSG.",
    ".DIRECT.GET.",
)


def _api(identity: str) -> list[str]:
    return [s for s in permissions(identity)["publish"]["allow"] if s.startswith("$JS.")]


@pytest.mark.parametrize("identity", SERVICES)
def test_no_service_manages_streams_or_consumers_or_reads_messages_directly(identity: str) -> None:
    api = _api(identity)
    assert [s for s in api if any(verb in s for verb in MANAGE)] == []
    assert [s for s in api if s.startswith("$JS.API") and s.endswith((">", "*"))] == []
    # The only consumer creation a service has: the scheduler's ephemeral (unnamed) ones on the change feed.
    creates = [s for s in api if ".CONSUMER.CREATE." in s]
    assert creates == (["$JS.API.CONSUMER.CREATE.WORKFLOW_CHANGES"] if identity == "scheduler" else [])


def test_each_service_may_check_exactly_what_it_waits_for() -> None:
    info = {i: {s.rsplit(".", 1)[-1] for s in _api(i) if ".STREAM.INFO." in s} for i in SERVICES}
    assert info["gateway"] == info["scheduler"] == {"EVENTS", "WORKFLOW_CHANGES"}
    executor = needs(ExecutorSettings())
    assert info["executor"] == set(executor.streams) == {"EVENTS", "DLQ"}
    assert info["auth"] == set()
    consumer = executor.consumers[0]
    assert {
        f"$JS.API.CONSUMER.INFO.{consumer.stream}.{consumer.durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{consumer.stream}.{consumer.durable}",
        f"$JS.ACK.{consumer.stream}.{consumer.durable}.>",
    } <= set(_api("executor"))


def test_the_provisioner_manages_the_platform_streams_and_nothing_else() -> None:
    api = _api(PROVISIONER)
    lay = default_layout()
    assert {f"$JS.API.STREAM.{verb}.{s}" for s in lay.streams for verb in ("CREATE", "UPDATE")} <= set(api)
    assert [s for s in api if any(v in s for v in (".DELETE.", ".PURGE.", ".MSG.", ".DIRECT."))] == []
    assert all(s.split(".")[4] in lay.streams for s in api if ".STREAM." in s)
    assert permissions(PROVISIONER)["subscribe"]["allow"] == [f"{inbox_prefix(PROVISIONER)}.>"]


@pytest.mark.parametrize("identity", ALL_IDENTITIES)
def test_replies_stay_private_and_credentials_go_only_from_executor_to_auth(identity: str) -> None:
    perms = permissions(identity)
    others = {f"{inbox_prefix(i)}.>" for i in ALL_IDENTITIES if i != identity}
    if identity == ADMIN:
        assert others | {PRIVATE} <= set(perms["subscribe"]["deny"]) and others <= set(perms["publish"]["deny"])
        return
    subscribe = set(perms["subscribe"]["allow"])
    assert not subscribe & others and ">" not in subscribe
    assert f"{inbox_prefix(identity)}.>" in subscribe
    assert (PRIVATE in perms["publish"]["allow"]) == (identity == "executor")
    assert (PRIVATE in subscribe) == (identity == "auth")
    assert ("allow_responses" in perms) == (identity in ("auth", "executor"))


def test_an_unknown_identity_has_no_permissions() -> None:
    with pytest.raises(ValueError, match="unknown NATS identity"):
        permissions("intruder")
