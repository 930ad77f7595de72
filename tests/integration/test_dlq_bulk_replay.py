"""Bulk DLQ replay (issue 13, acceptance 2): one filter call, progress to 100 %, one new outcome per letter."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from libs.common.bus import Bus
from services.gateway.store.replays import forget_old_jobs
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import Answer, FakeSink, Seen, definition, envelope, executor_env
from tests.helpers.gateway_app import Gateway, running_gateway
from tests.helpers.wait import wait_until

MAX_ATTEMPTS = 3


async def dead_letters(
    db: asyncpg.Connection,
    tenant_id: uuid.UUID,
    workflow_id: uuid.UUID,
    n: int,
    *,
    reason: str = "gave up after 3 attempts: HTTP 503",
    dead_at: datetime | None = None,
) -> list[uuid.UUID]:
    """``n`` events that died in an outage: a dead execution (all attempts used) and a dead letter each."""
    at = dead_at or datetime.now(UTC) - timedelta(hours=1)
    envelopes = [
        envelope(tenant_id, workflow_id, {"n": i, "token": "sk_live_abcdefghijklmnopqrstuv"}) for i in range(n)
    ]
    await db.executemany(
        """INSERT INTO executions (id, event_id, tenant_id, workflow_id, workflow_version, trigger, status, attempts,
                                   started_at, finished_at, error, input, created_at)
           VALUES ($1, $2, $3, $4, 1, 'webhook', 'dead', $5, $6, $6, $7, $8::jsonb, $6)""",
        [
            (
                uuid.uuid4(),
                e.event_id,
                tenant_id,
                workflow_id,
                MAX_ATTEMPTS,
                at,
                reason,
                f'{{"n": {i}, "token": "[REDACTED]"}}',
            )
            for i, e in enumerate(envelopes)
        ],
    )
    await db.executemany(
        """INSERT INTO dead_letters (event_id, tenant_id, workflow_id, reason, attempts, envelope, dead_at)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)""",
        [(e.event_id, tenant_id, workflow_id, reason, MAX_ATTEMPTS, e.model_dump_json(), at) for e in envelopes],
    )
    return [e.event_id for e in envelopes]


def fails_once_per_key() -> Callable[[Seen, int], Answer]:
    """Each event's first try gets a 503, its second a 200: only a replay with its attempts reset succeeds."""
    tried: Counter[str] = Counter()

    def answer(seen: Seen, _n: int) -> Answer:
        key = seen.headers.get("Idempotency-Key", "")
        tried[key] += 1
        return Answer(503, "still down") if tried[key] == 1 else Answer(200, "ok")

    return answer


async def poll_job(gw: Gateway, tenant_id: uuid.UUID, job_id: str, timeout: float) -> list[dict[str, Any]]:
    """Every distinct progress report until the job is done."""
    seen: list[dict[str, Any]] = []

    async def finished() -> bool:
        resp = await gw.client.get(f"/api/dlq/replay/{job_id}", headers=gw.auth(tenant_id))
        assert resp.status == 200
        job = (await resp.json())["data"]
        if not seen or seen[-1] != job:
            seen.append(job)
        return bool(job["state"] == "done")

    await wait_until(finished, timeout=timeout, interval=0.05, message="the replay job done")
    return seen


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_thousand_dead_letters_go_back_with_one_call(
    db: asyncpg.Connection, bus: Bus, nats_url: str, database_url: str, service: Callable[..., object], sink: FakeSink
):
    sink.behaviour = fails_once_per_key()
    tenant_id = await create_tenant(db)
    wf = await create_workflow(
        db, tenant_id, definition("http_request", {"method": "POST", "url": f"{sink.url}/orders"})
    )
    other = await create_workflow(db, tenant_id, definition("http_request", {"url": f"{sink.url}/other"}))
    letters = await dead_letters(db, tenant_id, wf, 1000)
    untouched = await dead_letters(db, tenant_id, other, 5)
    service(
        "services.executor",
        env=executor_env(
            nats_url,
            database_url,
            IPAAS_EXECUTOR_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
            IPAAS_EXECUTOR_BACKOFF_MAX_SECONDS="0.5",
            # each event's first try fails on purpose: no breaker
            IPAAS_EXECUTOR_BREAKER_FAIL_MAX="1000000",
        ),
    )
    async with running_gateway(database_url, nats_url, replay_batch=100, replay_poll_seconds=0.5) as gw:
        auth = gw.auth(tenant_id)
        page = await gw.client.get("/api/dlq", params={"workflow_id": str(wf), "limit": "1"}, headers=auth)
        listed = (await page.json())["data"][0]
        assert listed["payload"]["token"] == "[REDACTED]" and "503" in listed["last_error"]

        resp = await gw.client.post("/api/dlq/replay", json={"workflow_id": str(wf)}, headers=auth)
        assert resp.status == 202, await resp.text()
        job = (await resp.json())["data"]
        assert job["total"] == 1000 and job["state"] == "running"
        reports = await poll_job(gw, tenant_id, job["id"], timeout=60)
        assert reports[-1]["percent"] == 100 and reports[-1]["done"] == 1000 and reports[-1]["skipped"] == 0
        percents = [r["percent"] for r in reports]
        assert percents == sorted(percents)

        await wait_until(
            lambda: db.fetchval(
                "SELECT count(*) = 1000 FROM executions WHERE workflow_id = $1 AND status = 'succeeded'", wf
            ),
            timeout=60,
            message="every replayed event succeeded",
        )
        # One execution row per event, and each replay got the whole retry policy again (a 503, then a 200).
        rows = await db.fetch("SELECT event_id, attempts FROM executions WHERE workflow_id = $1", wf)
        assert len(rows) == 1000 and {r["attempts"] for r in rows} == {2}
        # At the sink, by Idempotency-Key: every event twice (the 503, then the 200), none more, no other.
        receipts = Counter(r.headers["Idempotency-Key"] for r in sink.paths("/orders"))
        assert set(receipts) == {str(e) for e in letters} and set(receipts.values()) == {2}
        assert sink.paths("/other") == []
        assert await db.fetchval(
            "SELECT count(*) FROM dead_letters WHERE workflow_id = $1 AND replayed_at IS NULL", other
        ) == len(untouched)
        again = await gw.client.post("/api/dlq/replay", json={"workflow_id": str(wf)}, headers=auth)
        assert (await again.json())["data"]["total"] == 0  # nothing left to replay


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_job_survives_a_gateway_restart_without_replaying_twice(
    db: asyncpg.Connection, bus: Bus, nats_url: str, database_url: str
):
    tenant_id = await create_tenant(db)
    wf = await create_workflow(db, tenant_id, definition("http_request", {"url": "http://127.0.0.1:9/x"}))
    letters = await dead_letters(db, tenant_id, wf, 300, reason="HTTP 500 from the target")
    old = await dead_letters(
        db, tenant_id, wf, 3, reason="HTTP 500 from the target", dead_at=datetime.now(UTC) - timedelta(days=3)
    )
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    async with running_gateway(database_url, nats_url, replay_batch=50, replay_pause_seconds=0.5) as first:
        # The list takes the replay's filters: it shows what a replay would take.
        async def listed(**params: str) -> set[str]:
            resp = await first.client.get("/api/dlq", params={"limit": "200", **params}, headers=first.auth(tenant_id))
            assert resp.status == 200, await resp.text()
            return {d["event_id"] for d in (await resp.json())["data"]}

        assert await listed(until=since, reason="HTTP 500") == {str(e) for e in old}
        assert await listed(reason="HTTP _00") == set()  # % and _ are characters, not wildcards
        assert len(await listed(since=since, reason="http 500")) == 200
        resp = await first.client.post(
            "/api/dlq/replay", json={"reason": "http 500", "since": since}, headers=first.auth(tenant_id)
        )
        assert resp.status == 202
        job_id = (await resp.json())["data"]["id"]

        async def started() -> bool:
            return bool(await db.fetchval("SELECT done > 0 FROM replay_jobs WHERE id = $1", uuid.UUID(job_id)))

        await wait_until(started, timeout=10, message="a first batch")
    done_at_stop = await db.fetchval("SELECT done FROM replay_jobs WHERE id = $1", uuid.UUID(job_id))
    assert 0 < done_at_stop < 300  # stopped in the middle
    async with running_gateway(database_url, nats_url, replay_poll_seconds=0.2, replay_pause_seconds=0) as second:
        reports = await poll_job(second, tenant_id, job_id, timeout=30)
        assert (reports[-1]["done"], reports[-1]["total"], reports[-1]["percent"]) == (300, 300, 100)
        other = await second.client.get(f"/api/dlq/replay/{job_id}", headers=second.auth(await create_tenant(db)))
        assert other.status == 404  # another tenant's job
        for bad in ({}, {"workflow_id": None}, {"since": "yesterday"}, {"event_ids": ["x"]}, {"tenant_id": "x"}):
            refused = await second.client.post("/api/dlq/replay", json=bad, headers=second.auth(tenant_id))
            assert refused.status == 422, bad
    msg_ids = [r["msg_id"] for r in await db.fetch("SELECT msg_id FROM outbox WHERE msg_id LIKE 'replay:%'")]
    assert sorted(msg_ids) == sorted(f"replay:{e}:{job_id}" for e in letters)  # each once, the old ones not
    assert await db.fetchval("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL") == len(old)
    assert await db.fetchval("SELECT count(*) FROM executions WHERE status = 'failed' AND attempts = 0") == 300


async def test_finished_jobs_are_forgotten_after_a_week(db: asyncpg.Connection, role_url: Callable[[str], str]):
    tenant_id = await create_tenant(db)
    old, recent, running = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for job_id, state, finished in (
        (old, "done", timedelta(days=8)),
        (recent, "done", timedelta(days=1)),
        (running, "running", None),
    ):
        await db.execute(
            """INSERT INTO replay_jobs (id, tenant_id, filter, state, total, created_at, finished_at)
               VALUES ($1, $2, '{}'::jsonb, $3, 1, now() - interval '9 days', now() - $4::interval)""",
            job_id,
            tenant_id,
            state,
            finished,
        )
        await db.execute("INSERT INTO replay_job_items (job_id, event_id) VALUES ($1, $2)", job_id, uuid.uuid4())
    async with asyncpg.create_pool(role_url("gateway"), min_size=1, max_size=2) as pool:
        assert await forget_old_jobs(pool, 100) == 1
    assert {r["id"] for r in await db.fetch("SELECT id FROM replay_jobs")} == {recent, running}
    assert {r["job_id"] for r in await db.fetch("SELECT job_id FROM replay_job_items")} == {recent, running}
