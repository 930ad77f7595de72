"""Dry-run limits end to end: the gateway in-process, the executor in-process, real NATS and Postgres,
and a slow fake target.  A tenant over its share gets 429, a full replica 503, a request whose caller has
given up is never run, and a run past its deadline is cancelled; another tenant's dry-runs go on."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from libs.common.bus import Bus
from tests.helpers.executor_app import ExecutorFactory
from tests.helpers.fakes import Answer, FakeSink, Seen, definition
from tests.helpers.gateway_app import Gateway, post_dry_run, running_gateway, tenant
from tests.helpers.wait import wait_until

SLOW = 3.0  # seconds the target takes on /slow/*


class Target:
    """A fake target: ``/held/*`` waits until released, ``/slow/*`` takes SLOW seconds, the rest answers at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, req: Seen, _n: int) -> Answer:
        if req.path.startswith("/held/"):
            await self.release.wait()
        return Answer(200, "ok", delay=SLOW if req.path.startswith("/slow/") else 0.0)


async def start_executor(executor: ExecutorFactory, **limits: str) -> None:
    # Held calls must not hit the action timeout of the test environment (5 s).
    await executor(IPAAS_EXECUTOR_ACTION_TIMEOUT_SECONDS="60", **limits)


def dry_run_body(url: str) -> dict[str, Any]:
    """A dry-run of a workflow POSTing to ``url``."""
    return {"workflow": definition("http_request", {"method": "POST", "url": url}, name="try"), "payload": {"n": 1}}


async def dry_run(gw: Gateway, tenant_id: uuid.UUID, url: str) -> tuple[int, dict[str, Any], str | None]:
    resp = await post_dry_run(gw, gw.auth(tenant_id), **dry_run_body(url))
    return resp.status, await resp.json(), resp.headers.get("Retry-After")


@pytest.mark.timeout(180)
async def test_a_tenant_over_its_share_gets_429_a_full_replica_503_and_others_still_run(
    database_url: str,
    nats_url: str,
    bus: Bus,
    executor: ExecutorFactory,
    sink: FakeSink,
) -> None:
    target = Target()
    sink.behaviour = target
    await start_executor(
        executor,
        IPAAS_EXECUTOR_DRY_RUN_CONCURRENCY="3",
        IPAAS_EXECUTOR_DRY_RUN_QUEUE="1",
        IPAAS_EXECUTOR_DRY_RUN_PER_TENANT="2",
    )
    greedy, polite, late_a, late_b = [await tenant(database_url) for _ in range(4)]
    async with running_gateway(database_url, nats_url) as gw:
        # One tenant floods with calls to a target that hangs: two run, the third is its own excess.
        flood = [asyncio.create_task(dry_run(gw, greedy, f"{sink.url}/held/{i}")) for i in range(3)]
        await wait_until(lambda: sink.current == 2, timeout=15, message="two of the flood running")
        done, pending = await asyncio.wait(flood, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1
        status, body, retry_after = done.pop().result()
        assert status == 429 and body["error"]["code"] == "dry_run_rate_limited", body
        assert retry_after is not None and int(retry_after) >= 1

        # Another tenant is not held up by the flood: it runs at once, in a free slot.
        status, body, _ = await dry_run(gw, polite, f"{sink.url}/fast")
        assert status == 200 and body["data"]["status"] == "succeeded", body
        assert not any(t.done() for t in pending)

        # Fill the last slot, then two more: one waits in the queue, the other finds it full.
        occupant = asyncio.create_task(dry_run(gw, polite, f"{sink.url}/held/occupant"))
        await wait_until(lambda: sink.current == 3, timeout=15, message="every slot busy")
        pair = [asyncio.create_task(dry_run(gw, who, f"{sink.url}/held/{who}")) for who in (late_a, late_b)]
        done, waiting = await asyncio.wait(pair, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1 and len(waiting) == 1
        status, body, retry_after = done.pop().result()
        assert status == 503 and body["error"]["code"] == "dry_run_busy", body
        assert retry_after is not None

        target.release.set()
        for task in [*pending, occupant, *waiting]:  # the queued one runs once a slot frees
            status, body, _ = await task
            assert status == 200 and body["data"]["status"] == "succeeded", body
        held = [r.path for r in sink.requests if r.path.startswith("/held/")]
        assert len(held) == 2 + 1 + 1  # the flood's two, the occupant, the queued one; nothing refused ran


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_dry_run_whose_caller_gave_up_is_not_run_and_one_past_its_deadline_is_cancelled(
    database_url: str,
    nats_url: str,
    bus: Bus,
    executor: ExecutorFactory,
    sink: FakeSink,
) -> None:
    target = Target()
    sink.behaviour = target
    await start_executor(executor, IPAAS_EXECUTOR_DRY_RUN_CONCURRENCY="1", IPAAS_EXECUTOR_DRY_RUN_QUEUE="4")
    tenant_id, other = await tenant(database_url), await tenant(database_url)
    # The gateway waits 1 s, so it tells the executor 500 ms.
    async with running_gateway(database_url, nats_url, dry_run_timeout_seconds=1.0) as gw:
        # Someone with more patience holds the only slot.
        command = {"tenant_id": str(other), **dry_run_body(f"{sink.url}/held/occupant"), "timeout_ms": 20_000}
        occupant = asyncio.create_task(bus.nc.request("svc.executor.dry_run", json.dumps(command).encode(), timeout=20))
        await wait_until(lambda: sink.current == 1, timeout=15, message="the slot taken")

        status, body, retry_after = await asyncio.wait_for(dry_run(gw, tenant_id, f"{sink.url}/late"), 1.5)
        assert status == 503 and body["error"]["code"] == "dry_run_busy", body
        assert retry_after is not None

        target.release.set()
        reply = json.loads((await occupant).data)
        assert reply["status"] == "succeeded"
        # The slot is free now; requests are taken in order, so had /late stayed queued it would run first.
        status, body, _ = await dry_run(gw, tenant_id, f"{sink.url}/after")
        assert status == 200 and body["data"]["status"] == "succeeded", body
        assert [r.path for r in sink.requests] == ["/held/occupant", "/after"]

        # A free slot, a target slower than the caller's patience: the run is stopped at the deadline.
        status, body, _ = await asyncio.wait_for(dry_run(gw, tenant_id, f"{sink.url}/slow/cut"), SLOW - 1)
        assert status == 200, body
        assert body["data"]["status"] == "failed" and body["data"]["error_code"] == "deadline_exceeded"
        assert "refused" not in body["data"]
        assert sink.paths("/slow/cut")  # it did start
        await wait_until(lambda: sink.current == 0, timeout=SLOW + 2, message="the cut call to end")
