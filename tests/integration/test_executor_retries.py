"""Acceptance 4 (retries, DLQ, replay) and the 429s of acceptance 2, through the running executor."""

from __future__ import annotations

import json
import time

from libs.common.models.events import DeadLetter, EventEnvelope
from tests.helpers.factories import create_workflow
from tests.helpers.fakes import (
    Answer,
    CredentialResponder,
    always,
    definition,
    final_row,
    publish_event,
    sequence,
    slack_workflow,
)
from tests.helpers.wait import wait_until

BASE = 0.2  # IPAAS_EXECUTOR_BACKOFF_BASE_SECONDS in executor_env


async def test_two_failures_then_success_follows_backoff_and_keeps_every_try_with_the_input_masked(
    bus, db, sink, creds, executor
):
    sink.behaviour = sequence(Answer(503, "down"), Answer(500, "oops"), Answer(200, "ok"))
    tenant, wf = await slack_workflow(db, creds, sink.url, "hi")
    await executor()
    event = await publish_event(bus, tenant, wf, {"order": 7, "api_key": "sk_live_abcdefghijklmnop"})
    row = await final_row(db, event.event_id)
    assert row["status"] == "succeeded" and row["attempts"] == 3
    assert sink.calls == 3
    t = [r.at for r in sink.requests]
    # Equal jitter: the wait after try n is within [base*2^(n-1)/2, base*2^(n-1)] (plus overhead).
    assert BASE / 2 <= t[1] - t[0] < BASE + 1.0
    assert BASE <= t[2] - t[1] < 2 * BASE + 1.0
    # Every try is kept with its outcome.
    tries = await db.fetch(
        "SELECT attempt, outcome, http_status, error, started_at, finished_at, duration_ms "
        "FROM execution_attempts WHERE event_id = $1 ORDER BY id",
        event.event_id,
    )
    assert [(t["attempt"], t["outcome"], t["http_status"]) for t in tries] == [
        (1, "failed", 503),
        (2, "failed", 500),
        (3, "succeeded", 200),
    ]
    assert "503" in tries[0]["error"] and tries[2]["error"] is None
    assert all(t["started_at"] <= t["finished_at"] and t["duration_ms"] is not None for t in tries)
    stored = row["input"] if isinstance(row["input"], dict) else json.loads(row["input"])
    assert stored == {"order": 7, "api_key": "[REDACTED]"}


async def test_always_failing_sink_is_called_max_times_then_dead_then_replayed(bus, db, sink, creds, executor):
    sink.behaviour = always(Answer(500, "always broken"))
    dlq_sub = await bus.js.subscribe("dlq.>", durable=None)
    tenant, wf = await slack_workflow(db, creds, sink.url, "n={{ payload.n }}")
    await executor(IPAAS_EXECUTOR_MAX_ATTEMPTS="4", IPAAS_EXECUTOR_BACKOFF_MAX_SECONDS="0.3")
    event = await publish_event(bus, tenant, wf, {"n": 1})
    row = await final_row(db, event.event_id)
    assert row["status"] == "dead" and row["attempts"] == 4
    assert "gave up after 4 attempts" in row["error"] and "500" in row["error"]
    assert sink.calls == 4
    letter = await db.fetchrow("SELECT * FROM dead_letters WHERE event_id = $1", event.event_id)
    assert letter is not None and letter["attempts"] == 4 and "gave up" in letter["reason"]
    stored = EventEnvelope.model_validate_json(letter["envelope"])  # jsonb as text on a plain connection
    assert stored == event
    msg = await dlq_sub.next_msg(timeout=5)
    assert msg.subject == f"dlq.{tenant}.{wf}"
    assert DeadLetter.model_validate_json(msg.data).event.event_id == event.event_id

    # Fix the sink, then replay exactly as the gateway does.
    sink.behaviour = always(Answer(200, "ok"))
    async with db.transaction():
        await db.execute("UPDATE dead_letters SET replayed_at = now() WHERE event_id = $1", event.event_id)
        await db.execute("UPDATE executions SET status = 'failed', attempts = 0 WHERE event_id = $1", event.event_id)
    await bus.publish(
        stored.subject,
        stored.model_dump_json().encode(),
        msg_id=f"replay:{stored.event_id}:{int(time.time() * 1000)}",
    )
    row = await final_row(db, event.event_id)
    assert row["status"] == "succeeded" and row["attempts"] == 1  # a replay counts its attempts anew
    assert await db.fetchval("SELECT count(*) FROM executions WHERE workflow_id = $1", wf) == 1
    assert sink.calls == 5 and sink.requests[-1].json() == {"text": "n=1"}


async def test_permanent_failure_goes_to_dlq_at_once(bus, db, sink, creds, slack_tenant, executor):
    sink.behaviour = always(Answer(404, "no_service"))
    tenant, cred = slack_tenant
    wf = await create_workflow(db, tenant, definition("slack_message", {"text": "hi"}, cred))
    wf_tpl = await create_workflow(db, tenant, definition("slack_message", {"text": "{{ payload.x.y }"}, cred))
    wf_nocred = await create_workflow(
        db, tenant, definition("slack_message", {"text": "hi"}, creds.add(tenant, "discord", {"webhook_url": "x"}))
    )
    await executor()
    events = [await publish_event(bus, tenant, w, {}) for w in (wf, wf_tpl, wf_nocred)]
    for event, says in zip(events, ("404", "template error", "type discord"), strict=True):
        row = await final_row(db, event.event_id)
        assert (row["status"], row["attempts"]) == ("dead", 1) and says in row["error"], row
    assert sink.calls == 1
    assert await db.fetchval("SELECT count(*) FROM dead_letters") == 3


async def test_slack_and_discord_429_are_honoured(bus, db, sinks, creds, executor):
    slack = await sinks(sequence(Answer(429, "rate_limited", {"Retry-After": "1"}), Answer(200, "ok")))
    discord = await sinks(
        sequence(
            Answer(429, json.dumps({"message": "You are being rate limited.", "retry_after": 1.2, "global": False})),
            Answer(204, ""),
        )
    )
    tenant, w1 = await slack_workflow(db, creds, slack.url, "s")
    c2 = creds.add(tenant, "discord", {"webhook_url": f"{discord.url}/api/webhooks/1/tok"})
    w2 = await create_workflow(db, tenant, definition("discord_message", {"content": "d"}, c2))
    await executor()
    for event in [await publish_event(bus, tenant, w, {}) for w in (w1, w2)]:
        row = await final_row(db, event.event_id)
        assert (row["status"], row["attempts"]) == ("succeeded", 2)
    assert slack.requests[1].at - slack.requests[0].at >= 1.0
    assert discord.requests[1].at - discord.requests[0].at >= 1.2


async def test_missing_credential_service_is_retried_not_lost(bus, db, nats_url, sink, executor):
    creds = CredentialResponder(nats_url)
    tenant, wf = await slack_workflow(db, creds, sink.url, "later")
    await executor(IPAAS_EXECUTOR_CREDENTIAL_TIMEOUT_SECONDS="0.5")
    event = await publish_event(bus, tenant, wf, {})
    failed = "SELECT status = 'failed' FROM executions WHERE event_id = $1"
    await wait_until(lambda: db.fetchval(failed, event.event_id), timeout=10, message="a failed try")
    await creds.start()  # auth comes up
    row = await final_row(db, event.event_id)
    assert row["status"] == "succeeded" and row["attempts"] >= 2
    assert sink.calls == 1
    await creds.stop()
