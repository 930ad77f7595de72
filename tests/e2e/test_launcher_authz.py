"""``make up`` runs its embedded NATS with authorization and its Postgres with one role per service,
and the whole platform still works under them.

One launched stack (auth, gateway, a scheduler, two executors): a user registers and
logs in through the gateway, stores an ``http`` credential, creates a webhook workflow
whose ``http_request`` action posts to a local sink with that credential's header, and
sends a signed webhook.  The sink gets the call (so the executor resolved the credential
from auth over NATS with its own identity) and the execution is ``succeeded``; a
schedule created through the API fires (scheduler: change feed and event publishing);
a dry run crosses NATS from the gateway to an executor.  With the launcher's passwords, the
executor's identity may ask auth for a credential and the gateway's may not; an
anonymous client is refused; no password is printed.  In Postgres every service is connected
as its own role, the gateway's role cannot read credentials, and the superuser cannot log in
over TCP.
"""

from __future__ import annotations

import asyncio
import json
import stat
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from deploy.local.pg_roles import with_role
from libs.common.bus.permissions import ALL_IDENTITIES, LOCAL_IDENTITIES, inbox_prefix
from libs.common.db.roles import ALL_ROLES, SERVICE_ROLES
from libs.common.models.credentials import RESOLVE_SUBJECT, CredentialReply
from tests.helpers.auth_setup import fast_hash_env
from tests.helpers.factories import connection, fetch_once
from tests.helpers.fakes import FakeSink
from tests.helpers.launcher import Run, database_url_as, nats_passwords, nats_url_as, pg_passwords
from tests.helpers.nats_probes import (
    ATTACK_STREAM,
    management_probes,
    reading_probes,
    refused_requests,
    refused_subscriptions,
)
from tests.helpers.stack_processes import Api, every_second
from tests.helpers.wait import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]
Launch = Callable[..., Run]


@asynccontextmanager
async def connected_as(state: dict[str, Any], identity: str, errors: list[str]) -> AsyncIterator[Client]:
    """A NATS connection as ``identity`` for the ``async with`` block; its asynchronous errors go to ``errors``."""

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        nats_url_as(state, identity),
        inbox_prefix=inbox_prefix(identity),
        error_cb=on_error,
        allow_reconnect=False,
        connect_timeout=5,
    )
    try:
        yield nc
    finally:
        await nc.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def check_resolve_permissions(state: dict[str, Any], tenant_id: str, credential_id: str) -> None:
    """The executor's identity gets the secret from auth; the gateway's is refused by NATS."""
    request = json.dumps({"tenant_id": tenant_id, "credential_id": credential_id}).encode()
    executor_errors: list[str] = []
    gateway_errors: list[str] = []
    async with (
        connected_as(state, "executor", executor_errors) as executor,
        connected_as(state, "gateway", gateway_errors) as gateway,
    ):
        reply = CredentialReply.model_validate_json((await executor.request(RESOLVE_SUBJECT, request, timeout=5)).data)
        assert reply.ok and reply.secret == {"headers": {"X-Api-Key": "k-launched"}}
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await gateway.request(RESOLVE_SUBJECT, request, timeout=1)
        await wait_until(
            lambda: any("permissions violation" in e.lower() and RESOLVE_SUBJECT in e for e in gateway_errors),
            timeout=5,
            message="the gateway's publish to the credential subject refused",
        )
        assert executor_errors == []


async def check_least_privilege(state: dict[str, Any]) -> None:
    """The launcher's gateway and scheduler identities cannot manage or read what is not theirs."""
    not_theirs = {"gateway": ["EVENTS", "DLQ", "WORKFLOW_CHANGES"], "scheduler": ["EVENTS", "DLQ"]}
    for identity, streams in not_theirs.items():
        errors: list[str] = []
        async with connected_as(state, identity, errors) as nc:
            probes = {**management_probes(inbox_prefix("executor")), **reading_probes(streams)}
            assert await refused_requests(nc, errors, probes) == [], identity
            others = [f"{inbox_prefix(i)}.>" for i in ALL_IDENTITIES if i != identity]
            assert await refused_subscriptions(nc, errors, [*others, "svc.auth.>", "events.>"]) == [], identity
    async with connected_as(state, "admin", []) as admin:
        js = admin.jetstream()
        with pytest.raises(NotFoundError):
            await js.stream_info(ATTACK_STREAM)
        assert (await js.stream_info("EVENTS")).config.subjects == ["events.>"]
        assert [c.name for c in await js.consumers_info("EVENTS")] == ["executor"]


async def check_database_roles(state: dict[str, Any]) -> None:
    """Each service is connected as its own role; the gateway's may not read credentials; no superuser over TCP."""
    connected = await fetch_once(
        database_url_as(state),
        "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert {r[0] for r in connected} == set(SERVICE_ROLES.values())
    async with connection(database_url_as(state, SERVICE_ROLES["gateway"])) as gateway:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await gateway.fetch("SELECT ciphertext FROM credentials")
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        await asyncpg.connect(with_role(state["database_url"], "postgres", None))


async def test_launched_stack_works_under_nats_authorization(local_dir: Path, launch: Launch, sink: FakeSink) -> None:
    run = launch(
        IPAAS_LOCAL_SCHEDULER_REPLICAS="1",
        IPAAS_EGRESS_ALLOW_CIDRS="127.0.0.1/32",
        IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS="1",  # a 1 s schedule
        **fast_hash_env(),
    )
    state = run.wait_ready()
    # One password per identity, readable by the owner only; the state file holds none.
    passwords = nats_passwords(state)
    assert set(passwords) == set(LOCAL_IDENTITIES)
    assert mode(Path(state["nats_users_file"])) == 0o600 and mode(local_dir / "nats-authz.conf") == 0o600
    assert "@" not in state["nats_url"]
    with pytest.raises(Exception):  # noqa: B017 - nats-py raises several types for a refused login
        await asyncio.wait_for(
            nats.connect(state["nats_url"], allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3),
            timeout=10,
        )

    async with aiohttp.ClientSession() as http:
        api = Api(http, state["services"]["gateway"])
        registered = await api.sign_up()
        cred = await api.credential("sink key", "http", {"headers": {"X-Api-Key": "k-launched"}})
        action = {
            "type": "http_request",
            "credential_id": cred["id"],
            "config": {"method": "POST", "url": f"{sink.url}/orders", "body": {"id": "{{ payload.id }}"}},
        }
        workflow = await api.webhook_workflow("orders", action)

        event_id, _ = await api.webhook(workflow, {"id": "A-1"})
        await wait_until(lambda: sink.paths("/orders"), timeout=20, message="the sink to be called")
        call = sink.paths("/orders")[0]
        assert call.json() == {"id": "A-1"} and call.headers.get("X-Api-Key") == "k-launched"
        assert (await api.execution(workflow["id"], timeout=20))["event_id"] == event_id

        # The scheduler learns of a new schedule (change feed) and publishes its events.
        ticking = await api.data("POST", "/api/workflows", every_second("ticks", f"{sink.url}/tick"), expect=201)
        await wait_until(lambda: sink.paths("/tick"), timeout=20, message="a scheduled run")
        await api.call("PATCH", f"/api/workflows/{ticking['id']}", {"is_active": False}, expect=200)

        # Gateway -> executor request/reply over NATS (svc.executor.dry_run).
        dry = await api.call(
            "POST",
            "/api/workflows/dry-run",
            {
                "workflow": {
                    "name": "dry",
                    "trigger": {"type": "webhook"},
                    "action": {**action, "config": {**action["config"], "url": f"{sink.url}/dry"}},
                },
                "payload": {"id": "D-1"},
            },
            expect=200,
        )
        assert dry["data"]["status"] == "succeeded" and sink.paths("/dry")[0].json() == {"id": "D-1"}

    await check_resolve_permissions(state, registered["tenant_id"], cred["id"])
    await check_least_privilege(state)
    await check_database_roles(state)
    assert set(pg_passwords(state)) == set(ALL_ROLES) and mode(Path(state["pg_users_file"])) == 0o600
    assert "***@" in state["database_url"]

    started = time.monotonic()
    assert run.terminate() == 0 and time.monotonic() - started < 60
    output = run.output()
    assert "NATS authorization on" in output
    assert "NATS provisioned: stream EVENTS, stream DLQ, stream WORKFLOW_CHANGES, consumer EVENTS/executor" in output
    assert "not provisioned yet" not in output  # provisioned before any service started
    leaked = [
        identity for identity, password in [*passwords.items(), *pg_passwords(state).items()] if password in output
    ]
    assert leaked == [], f"passwords of {leaked} appear in the launcher's output"
    assert "permissions violation" not in output.lower()  # no service hit a refused subject
