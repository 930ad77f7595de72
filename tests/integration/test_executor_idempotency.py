"""Acceptance 6: final rows are not re-run, the pinned version runs, disabled workflows are skipped; and a
call longer than ack_wait is kept alive by in_progress() heartbeats: no redelivery, one call."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.factories import add_version, create_workflow
from tests.helpers.fakes import Answer, definition, final_row, publish_event, slack_workflow
from tests.helpers.wait import consumer_idle, wait_until


async def test_redelivered_succeeded_event_does_not_call_the_sink_again(bus, db, sink, creds, executor):
    tenant, wf = await slack_workflow(db, creds, sink.url, "once")
    await executor()
    event = await publish_event(bus, tenant, wf, {}, dedup_key="delivery-1")
    first = await final_row(db, event.event_id)
    assert first["status"] == "succeeded" and sink.calls == 1

    # The same event again, past JetStream's duplicate window (a new message id): it must be acked only.
    await bus.publish(event.subject, event.model_dump_json().encode(), msg_id="late-resend-1")
    await wait_until(lambda: consumer_idle(bus), timeout=10, message="resend consumed and acked")
    again = await db.fetchrow("SELECT * FROM executions WHERE event_id = $1", event.event_id)
    assert sink.calls == 1
    assert (again["status"], again["attempts"], again["updated_at"]) == ("succeeded", 1, first["updated_at"])
    assert await db.fetchval("SELECT count(*) FROM executions") == 1


async def test_event_runs_the_version_it_was_published_for(bus, db, sink, slack_tenant, executor):
    tenant, cred = slack_tenant
    wf = await create_workflow(db, tenant, definition("slack_message", {"text": "v1 {{ payload.n }}"}, cred))
    v2 = await add_version(db, wf, definition("slack_message", {"text": "v2 {{ payload.n }}"}, cred))
    assert v2 == 2
    await executor()
    old = await publish_event(bus, tenant, wf, {"n": 1}, version=1)
    new = await publish_event(bus, tenant, wf, {"n": 2}, version=2)
    r_old, r_new = await final_row(db, old.event_id), await final_row(db, new.event_id)
    assert (r_old["status"], r_old["workflow_version"]) == ("succeeded", 1)
    assert (r_new["status"], r_new["workflow_version"]) == ("succeeded", 2)
    assert sorted(r.json()["text"] for r in sink.requests) == ["v1 1", "v2 2"]


async def test_workflow_disabled_or_deleted_after_ingest_is_skipped(bus, db, sink, creds, slack_tenant, executor):
    tenant, cred = slack_tenant
    disabled = await create_workflow(db, tenant, definition("slack_message", {"text": "x"}, cred))
    deleted = await create_workflow(db, tenant, definition("slack_message", {"text": "y"}, cred))
    e1 = await publish_event(bus, tenant, disabled, {})  # accepted while active...
    e2 = await publish_event(bus, tenant, deleted, {})
    await db.execute("UPDATE workflows SET is_active = false WHERE id = $1", disabled)  # ...then disabled
    await db.execute("UPDATE workflows SET deleted_at = now() WHERE id = $1", deleted)
    await executor()
    r1, r2 = await final_row(db, e1.event_id), await final_row(db, e2.event_id)
    assert r1["status"] == "skipped" and "disabled" in r1["error"]
    assert r2["status"] == "skipped" and "deleted" in r2["error"]
    assert sink.calls == 0
    assert creds.requests == 0


async def test_overlap_skip_records_a_skipped_scheduled_run(bus, db, sink, slack_tenant, executor):
    tenant, cred = slack_tenant
    every_minute = {"type": "schedule", "interval_seconds": 60, "overlap": "skip"}
    wf = await create_workflow(db, tenant, definition("slack_message", {"text": "tick"}, cred, trigger=every_minute))
    # A previous scheduled run is still running.
    await db.execute(
        """INSERT INTO executions (id, event_id, tenant_id, workflow_id, workflow_version, trigger, status,
                                   attempts, started_at)
           VALUES (gen_random_uuid(), gen_random_uuid(), $1, $2, 1, 'schedule', 'running', 1, now())""",
        tenant,
        wf,
    )
    await executor()
    event = await publish_event(
        bus, tenant, wf, {}, trigger="schedule", dedup_key=f"sched:{wf}:1:2026-01-01T00:01:00+00:00"
    )
    row = await final_row(db, event.event_id)
    assert row["status"] == "skipped" and "still running" in row["error"]
    assert sink.calls == 0


@pytest.mark.slow
async def test_slow_call_outlives_ack_wait_without_redelivery(
    bus: Any, db: Any, sink: Any, creds: Any, executor: Any
) -> None:
    sink.behaviour = lambda _r, _n: Answer(200, "ok", delay=3.0)
    tenant, wf = await slack_workflow(db, creds, sink.url, "slow")
    await executor(
        IPAAS_EXECUTOR_ACK_WAIT_SECONDS="1",
        IPAAS_EXECUTOR_HEARTBEAT_SECONDS="0.4",
        IPAAS_EXECUTOR_ACTION_TIMEOUT_SECONDS="10",
    )
    event = await publish_event(bus, tenant, wf, {})
    row = await final_row(db, event.event_id, timeout=15)
    assert row["status"] == "succeeded" and row["attempts"] == 1
    assert row["duration_ms"] >= 3000
    assert sink.calls == 1
    info = await bus.js.consumer_info("EVENTS", "executor")
    assert info.num_redelivered == 0
