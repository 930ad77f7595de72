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
from typing import Any

import pytest

from tests.e2e.conftest import Platform, Stack
from tests.helpers.fakes import Answer, FakeSink
from tests.helpers.stack_processes import Api
from tests.helpers.wait import wait_until

REFRESH = 1.0


@pytest.fixture
async def stack(platform: Platform) -> Stack:
    replays = {"IPAAS_GATEWAY_API_KEY_REFRESH_SECONDS": str(REFRESH), "IPAAS_GATEWAY_REPLAY_POLL_SECONDS": "0.5"}
    return await platform(gateway=replays)


async def _key(stack: Stack, name: str, scopes: list[str]) -> tuple[Api, dict[str, Any]]:
    """A new API key of the signed-up user, and a client of the same gateway that authenticates with it."""
    created = await stack.data("POST", "/api/keys", {"name": name, "scopes": scopes}, expect=201)
    client = Api(stack.http, stack.base)
    client.token = created["key"]
    return client, created


async def _status(client: Api, method: str, path: str) -> int:
    async with client.http.request(method, f"{client.base}{path}", headers=client.headers) as resp:
        return resp.status


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_key_finds_an_event_and_replays_it_by_filter(stack: Stack, sink: FakeSink) -> None:
    fixed = {"value": False}
    sink.behaviour = lambda _req, _n: Answer(200) if fixed["value"] else Answer(400, "bad order")
    writer, _ = await _key(stack, "deploy", ["write"])
    operator, operator_key = await _key(stack, "on call", ["read", "replay"])
    created = await writer.webhook_workflow(
        "orders", {"type": "http_request", "config": {"method": "POST", "url": f"{sink.url}/orders"}}
    )
    wf = created["id"]
    run = await writer.data(
        "POST", f"/api/workflows/{wf}/run", {"payload": {"order": 7, "password": "correct horse battery"}}, expect=202
    )
    event_id = run["event_id"]

    async def dead() -> Any:
        page = await operator.data("GET", f"/api/executions?event_id={event_id}", expect=200)
        return page[0] if page and page[0]["status"] == "dead" else None

    execution = await wait_until(dead, timeout=20, message="the event dead (a permanent 400)")
    detail = await operator.data("GET", f"/api/executions/{execution['id']}", expect=200)
    assert detail["input"] == {"order": 7, "password": "[REDACTED]"}
    assert [(t["attempt"], t["outcome"], t["http_status"]) for t in detail["attempt_history"]] == [(1, "dead", 400)]
    await operator.call("PATCH", f"/api/workflows/{wf}", {"is_active": False}, expect=403)

    fixed["value"] = True
    job = await operator.data("POST", "/api/dlq/replay", {"workflow_id": wf, "reason": "400"}, expect=202)
    assert job["total"] == 1, job

    async def job_done() -> bool:
        now = await operator.data("GET", f"/api/dlq/replay/{job['id']}", expect=200)
        return bool(now["percent"] == 100 and now["state"] == "done")

    await wait_until(job_done, timeout=20, message="the replay job at 100 %")

    async def succeeded() -> Any:
        return await operator.data("GET", f"/api/executions?workflow_id={wf}&status=succeeded", expect=200)

    done = await wait_until(succeeded, timeout=20, message="the replayed event succeeded")
    assert [e["event_id"] for e in done] == [event_id] and done[0]["attempts"] == 1
    detail = await operator.data("GET", f"/api/executions/{done[0]['id']}", expect=200)
    assert [t["outcome"] for t in detail["attempt_history"]] == ["dead", "succeeded"]
    assert sink.calls == 2

    await stack.call("DELETE", f"/api/keys/{operator_key['id']}", expect=200)
    started = time.monotonic()
    while await _status(operator, "GET", "/api/executions") == 200:
        assert time.monotonic() - started < REFRESH + 2.0, "a revoked key is still accepted"
    assert await _status(operator, "GET", "/api/executions") == 401
