"""Issue 13 through the services as processes: an API key drives history look-up and a bulk replay.

Auth, gateway and an executor run as processes, each as its own Postgres
role.  A CI-style key with ``write`` runs a workflow whose target refuses; a
``read``+``replay`` key finds the execution by its event id (input, the try
and the target's status), is refused a change, replays the dead letter by a
filter and follows the job; the replay succeeds on the same row with its
attempts counted anew; the key, revoked, is refused within the gateway's
refresh interval.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_stack_e2e import Stack
from tests.helpers.fakes import Answer, FakeSink, executor_env
from tests.helpers.services import ServiceProcess
from tests.helpers.stack_processes import start_auth_and_gateway
from tests.helpers.wait import wait_until

REFRESH = 1.0


@pytest.fixture
async def stack(
    service: Callable[..., ServiceProcess], database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    auth, gateway = start_auth_and_gateway(
        service,
        database_url,
        nats_url,
        tmp_path,
        gateway={"IPAAS_GATEWAY_API_KEY_REFRESH_SECONDS": str(REFRESH), "IPAAS_GATEWAY_REPLAY_POLL_SECONDS": "0.5"},
    )
    executor = service("services.executor", env=executor_env(nats_url, database_url))
    async with aiohttp.ClientSession() as http:
        s = Stack(http, auth, gateway, [executor])
        await s.sign_up()
        yield s


async def _as(stack: Stack, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with stack.http.request(
        method, f"{stack.gateway.url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        return resp.status, await resp.json()


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_key_finds_an_event_and_replays_it_by_filter(stack: Stack, sink: FakeSink) -> None:
    fixed = {"value": False}
    sink.behaviour = lambda _req, _n: Answer(200) if fixed["value"] else Answer(400, "bad order")
    writer = (await stack.call("POST", "/api/keys", {"name": "deploy", "scopes": ["write"]}, expect=201))["data"]
    operator = (await stack.call("POST", "/api/keys", {"name": "on call", "scopes": ["read", "replay"]}, expect=201))[
        "data"
    ]
    status, created = await _as(
        stack,
        writer["key"],
        "POST",
        "/api/workflows",
        {
            "name": "orders",
            "trigger": {"type": "webhook"},
            "action": {"type": "http_request", "config": {"method": "POST", "url": f"{sink.url}/orders"}},
        },
    )
    assert status == 201, created
    wf = created["data"]["id"]
    status, run = await _as(
        stack,
        writer["key"],
        "POST",
        f"/api/workflows/{wf}/run",
        {"payload": {"order": 7, "password": "correct horse battery"}},
    )
    assert status == 202, run
    event_id = run["data"]["event_id"]
    key = operator["key"]

    async def dead() -> Any:
        _, page = await _as(stack, key, "GET", f"/api/executions?event_id={event_id}")
        return page["data"][0] if page["data"] and page["data"][0]["status"] == "dead" else None

    execution = await wait_until(dead, timeout=20, message="the event dead (a permanent 400)")
    _, detail = await _as(stack, key, "GET", f"/api/executions/{execution['id']}")
    assert detail["data"]["input"] == {"order": 7, "password": "[REDACTED]"}
    assert [(t["attempt"], t["outcome"], t["http_status"]) for t in detail["data"]["attempt_history"]] == [
        (1, "dead", 400)
    ]
    assert (await _as(stack, key, "PATCH", f"/api/workflows/{wf}", {"is_active": False}))[0] == 403

    fixed["value"] = True
    status, job = await _as(stack, key, "POST", "/api/dlq/replay", {"workflow_id": wf, "reason": "400"})
    assert status == 202 and job["data"]["total"] == 1, job

    async def job_done() -> bool:
        _, now = await _as(stack, key, "GET", f"/api/dlq/replay/{job['data']['id']}")
        return bool(now["data"]["percent"] == 100 and now["data"]["state"] == "done")

    await wait_until(job_done, timeout=20, message="the replay job at 100 %")

    async def succeeded() -> Any:
        _, page = await _as(stack, key, "GET", f"/api/executions?workflow_id={wf}&status=succeeded")
        return page["data"]

    done = await wait_until(succeeded, timeout=20, message="the replayed event succeeded")
    assert [e["event_id"] for e in done] == [event_id] and done[0]["attempts"] == 1
    _, detail = await _as(stack, key, "GET", f"/api/executions/{done[0]['id']}")
    assert [t["outcome"] for t in detail["data"]["attempt_history"]] == ["dead", "succeeded"]
    assert sink.calls == 2

    await stack.call("DELETE", f"/api/keys/{operator['id']}", expect=200)
    started = time.monotonic()
    while (await _as(stack, key, "GET", "/api/executions"))[0] == 200:
        assert time.monotonic() - started < REFRESH + 2.0, "a revoked key is still accepted"
    assert (await _as(stack, key, "GET", "/api/executions"))[0] == 401
