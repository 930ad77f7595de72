"""Execution history (issue 13, acceptance 1): look-up by event id, every try with its input, retention."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from libs.common.bus import Bus
from services.executor.retention import Pruner
from tests.helpers.executor_app import ExecutorFactory
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import (
    Answer,
    CredentialResponder,
    FakeSink,
    final_row,
    publish_event,
    sequence,
    slack_workflow,
)
from tests.helpers.gateway_app import WEBHOOK_WORKFLOW, Gateway, list_executions


async def _insert(
    db: asyncpg.Connection,
    tenant_id: uuid.UUID,
    workflow_id: uuid.UUID,
    *,
    status: str = "succeeded",
    trigger: str = "webhook",
    created_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> uuid.UUID:
    event_id = uuid.uuid4()
    at = created_at or datetime.now(UTC)
    await db.execute(
        """INSERT INTO executions (id, event_id, tenant_id, workflow_id, workflow_version, trigger, status, attempts,
                                   started_at, finished_at, created_at)
           VALUES ($1, $2, $3, $4, 1, $5, $6, 1, $7, $8, $7)""",
        uuid.uuid4(),
        event_id,
        tenant_id,
        workflow_id,
        trigger,
        status,
        at,
        finished_at if finished_at is not None else (None if status == "running" else at),
    )
    await db.execute(
        """INSERT INTO execution_attempts (event_id, attempt, started_at, finished_at, outcome)
           VALUES ($1, 1, $2, $2, 'failed')""",
        event_id,
        at,
    )
    return event_id


async def test_lookup_by_event_id_trigger_and_time_range(gw: Gateway, db: asyncpg.Connection):
    tenant_id = await create_tenant(db)
    other_tenant = await create_tenant(db)
    wf = await create_workflow(db, tenant_id, WEBHOOK_WORKFLOW)
    now = datetime.now(UTC)
    wanted = await _insert(db, tenant_id, wf)
    second = await _insert(db, tenant_id, wf)
    scheduled = await _insert(db, tenant_id, wf, trigger="schedule", created_at=now - timedelta(hours=2))
    foreign = await _insert(db, other_tenant, await create_workflow(db, other_tenant, WEBHOOK_WORKFLOW))

    found = await list_executions(gw, tenant_id, event_id=str(wanted))
    assert [e["event_id"] for e in found] == [str(wanted)]
    assert await list_executions(gw, tenant_id, event_id=str(foreign)) == []  # another tenant's event is not there
    assert [e["event_id"] for e in await list_executions(gw, tenant_id, trigger="schedule")] == [str(scheduled)]
    hour_ago = (now - timedelta(hours=1)).isoformat()
    assert [e["event_id"] for e in await list_executions(gw, tenant_id, until=hour_ago)] == [str(scheduled)]
    assert {e["event_id"] for e in await list_executions(gw, tenant_id, since=hour_ago)} == {str(wanted), str(second)}

    auth = gw.auth(tenant_id)
    for bad in (
        {"event_id": "nope"},
        {"trigger": "cron"},
        {"since": "yesterday"},
        {"until": ""},
        {"since": "2026-01-01T00:00:00"},  # no offset: which zone?
        {"until": "1767225600"},
        {"since": "2026-01-01 00:00:00Z"},
    ):
        resp = await gw.client.get("/api/executions", params=bad, headers=auth)
        assert resp.status == 422, bad


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_two_failures_then_success_shows_every_try_and_the_input(
    gw: Gateway, bus: Bus, db: asyncpg.Connection, sink: FakeSink, creds: CredentialResponder, executor: ExecutorFactory
):
    sink.behaviour = sequence(Answer(503, "down for maintenance"), Answer(500, "oops"), Answer(200, "ok"))
    tenant_id, wf = await slack_workflow(db, creds, sink.url, "order {{ payload.order }}")
    await executor()
    event = await publish_event(bus, tenant_id, wf, {"order": 7, "password": "hunter2-hunter2"})
    await final_row(db, event.event_id)
    listed = await list_executions(gw, tenant_id, event_id=str(event.event_id))
    assert len(listed) == 1 and listed[0]["attempts"] == 3 and listed[0]["status"] == "succeeded"
    resp = await gw.client.get(f"/api/executions/{listed[0]['id']}", headers=gw.auth(tenant_id))
    detail = (await resp.json())["data"]
    assert detail["input"] == {"order": 7, "password": "[REDACTED]"}
    tries = detail["attempt_history"]
    assert [(t["attempt"], t["outcome"], t["http_status"]) for t in tries] == [
        (1, "failed", 503),
        (2, "failed", 500),
        (3, "succeeded", 200),
    ]
    assert "503" in tries[0]["error"] and "500" in tries[1]["error"] and tries[2]["error"] is None
    assert all(t["started_at"] <= t["finished_at"] for t in tries)


async def test_pruning_removes_only_expired_final_rows(db: asyncpg.Connection, role_url: Callable[[str], str]):
    tenant_id = await create_tenant(db)
    wf = await create_workflow(db, tenant_id, WEBHOOK_WORKFLOW)
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    expired = [
        await _insert(db, tenant_id, wf, status=s, created_at=old)
        for s in ("succeeded", "dead", "skipped")
        for _ in range(4)
    ]
    await db.execute(
        """INSERT INTO dead_letters (event_id, tenant_id, workflow_id, reason, attempts, envelope, dead_at)
           VALUES ($1, $2, $3, 'gave up', 6, '{}'::jsonb, $4)""",
        expired[4],
        tenant_id,
        wf,
        old,
    )
    kept = [
        await _insert(db, tenant_id, wf, created_at=now - timedelta(days=29)),  # not old enough
        await _insert(db, tenant_id, wf, status="running", created_at=old),  # still running
        await _insert(db, tenant_id, wf, status="failed", created_at=old),  # a retry is due
        await _insert(db, tenant_id, wf, created_at=old, finished_at=now - timedelta(days=1)),  # finished lately
    ]
    async with asyncpg.create_pool(role_url("executor"), min_size=1, max_size=2) as pool:
        pruner = Pruner(pool, retention_days=30, batch=5, interval_seconds=60, pause_seconds=0)
        assert await pruner.prune(now) == len(expired)  # 12 rows in batches of 5: three statements
        assert await pruner.prune(now) == 0
        assert not Pruner(pool, retention_days=0, batch=5, interval_seconds=60).enabled
    left = {r["event_id"] for r in await db.fetch("SELECT event_id FROM executions")}
    assert left == set(kept)
    tries = {r["event_id"] for r in await db.fetch("SELECT event_id FROM execution_attempts")}
    assert tries == set(kept)
    assert await db.fetchval("SELECT count(*) FROM dead_letters") == 0
