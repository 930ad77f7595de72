"""Nothing accepted vanishes: bad envelopes become dead letters, a full stream answers 503, failing targets
get exactly their attempts (scenarios 7, 8 and 12 of the tenant-isolation issue)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from tests.helpers.fakes import Answer, webhook_envelopes
from tests.helpers.ledger import Ledger, Tenant, http_workflow
from tests.helpers.services import metric, metrics_text
from tests.helpers.wait import consumer_idle, contains, wait_until


def _envelope(tenant: Tenant, key: str) -> dict[str, Any]:
    """A webhook event of ``tenant``'s workflow as JSON, dedup key ``key`` + ``0``."""
    [env] = webhook_envelopes(tenant.id, tenant.workflow_id, 1, prefix=key, payload_key="n")
    return dict(json.loads(env.model_dump_json()))


@pytest.mark.timeout(120)
async def test_bad_envelopes_are_dead_letters_and_a_newer_producers_field_is_ignored(bus, db, stack, sink):
    stack.start_gateway()
    stack.start_executor()
    tenant = await stack.tenant(http_workflow(f"{sink.url}/e"))
    subject = f"events.{tenant.id}.{tenant.workflow_id}"
    # A newer producer added a field: the event runs (rolling upgrades must not drop events).
    newer = _envelope(tenant, "newer") | {"priority": "high"}
    await bus.publish(subject, json.dumps(newer).encode(), msg_id="t:newer")
    # A field with a value this version cannot read, and a body that is not JSON at all.
    invalid = _envelope(tenant, "invalid") | {"trigger": "telepathy"}
    await bus.publish(subject, json.dumps(invalid).encode(), msg_id="t:invalid")
    raw = b"\x00\xffnot an envelope"
    await bus.publish(subject, raw, msg_id="t:raw")

    async def letters() -> Any:
        rows = await db.fetch(
            "SELECT event_id, reason, raw, envelope FROM dead_letters WHERE tenant_id = $1", tenant.id
        )
        return rows if len(rows) == 2 else None

    rows = await wait_until(letters, timeout=20, message="two dead letters")
    by_raw = {bytes(r["raw"]): r for r in rows}
    assert set(by_raw) == {json.dumps(invalid).encode(), raw}
    assert "trigger" in by_raw[json.dumps(invalid).encode()]["reason"]
    assert "invalid event envelope" in by_raw[raw]["reason"]
    ran = await wait_until(lambda: sink.calls == 1, timeout=20, message="the newer envelope ran")
    assert ran and sink.requests[0].headers["Idempotency-Key"] == newer["event_id"]

    status, body = await stack.api("GET", "/api/dlq", tenant)
    assert status == 200
    listed = {d["event_id"]: d for d in body["data"]}
    assert {str(r["event_id"]) for r in rows} == set(listed)
    assert all(d["reason"] for d in listed.values())

    # The DLQ stream has a copy with the raw bytes (published just after the dead_letters row commits).
    async def raw_copies() -> set[bytes]:
        info = await bus.js.stream_info("DLQ")
        if not info.state.messages:
            return set()
        copies = [
            json.loads((await bus.js.get_msg("DLQ", seq)).data or b"{}")
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]
        return {base64.b64decode(c["raw_base64"]) for c in copies if "raw_base64" in c}

    await wait_until(lambda: contains(raw_copies(), raw), message="the raw copy in DLQ")
    assert await wait_until(lambda: consumer_idle(bus), message="every event acked")


@pytest.mark.timeout(180)
async def test_a_full_stream_answers_503_and_accepts_again_once_drained(bus, db, stack, sink):
    small = {"IPAAS_NATS_EVENTS_MAX_BYTES": str(64 * 1024)}
    stack.start_gateway(**small)
    tenant = await stack.tenant(http_workflow(f"{sink.url}/f"))
    ledger = Ledger()
    await stack.send(ledger, tenant, 400, concurrency=8, payload=lambda i: {"n": i, "pad": "x" * 200})
    statuses = ledger.statuses()
    assert statuses[503] > 0, statuses
    assert set(statuses) == {202, 503}, statuses  # never a 500
    assert not ledger.refused_without_retry_after()
    stack.start_executor(**small)

    async def drained() -> bool:  # every event acked, so EVENTS (a work queue) is empty again
        return bool((await bus.js.stream_info("EVENTS")).state.messages == 0 and sink.calls >= statuses[202])

    await wait_until(drained, timeout=30, message="the backlog drained")
    await stack.send_accepted(ledger, tenant, 20, concurrency=4)
    await ledger.settle(db, bus, timeout=60)
    figures = await ledger.check(db, bus, [tenant.workflow_id], sink)
    assert figures["rows"] == {"succeeded": statuses[202] + 20}


@pytest.mark.timeout(180)
async def test_an_always_failing_target_gets_exactly_its_attempts_and_only_half_open_trials(bus, db, stack, sinks):
    sink = await sinks(lambda _r, _n: Answer(500, "down"))
    attempts, fail_max = 4, 3
    stack.start_gateway()
    # One slot: tries are strictly one after another, so every call can be accounted for.
    ex = stack.start_executor(
        IPAAS_EXECUTOR_MAX_IN_FLIGHT="1",
        IPAAS_EXECUTOR_MAX_ATTEMPTS=str(attempts),
        IPAAS_EXECUTOR_BACKOFF_BASE_SECONDS="0.2",
        IPAAS_EXECUTOR_BACKOFF_MAX_SECONDS="1",
        IPAAS_EXECUTOR_BREAKER_FAIL_MAX=str(fail_max),
        IPAAS_EXECUTOR_BREAKER_RESET_SECONDS="1",
    )
    tenant = await stack.tenant(http_workflow(f"{sink.url}/down"))
    ledger = Ledger()
    await stack.send(ledger, tenant, 10, concurrency=1)
    await ledger.settle(db, bus, timeout=120)
    figures = await ledger.check(db, bus, [tenant.workflow_id])
    assert figures["rows"] == {"dead": 10}
    rows = await db.fetch("SELECT event_id, attempts, error FROM executions WHERE workflow_id = $1", tenant.workflow_id)
    assert {r["attempts"] for r in rows} == {attempts}
    assert all(r["error"].startswith(f"gave up after {attempts} attempts") for r in rows)
    letters = await db.fetch("SELECT event_id, attempts FROM dead_letters WHERE workflow_id = $1", tenant.workflow_id)
    assert sorted(str(r["event_id"]) for r in letters) == sorted(ledger.accepted)
    # One DLQ message per event.
    info = await bus.js.stream_info("DLQ", subjects_filter=f"dlq.{tenant.id}.>")
    assert info.state.messages == 10

    metrics = await asyncio.to_thread(metrics_text, ex.metrics_url)
    transitions = "ipaas_executor_breaker_transitions_total"
    trials = metric(metrics, transitions, 'connector="http_request",from_state="open",to_state="half_open"')
    reopened = metric(metrics, transitions, 'connector="http_request",from_state="half_open",to_state="open"')
    assert trials >= 1 and reopened == trials
    # The target saw the tries that opened the breaker, then only the half-open trials.
    assert sink.calls == fail_max + trials, (sink.calls, trials)
    # Backoff: tries of one event reaching the target are never closer than half the base delay.
    for event_id in ledger.accepted:
        seen = sorted(r.at for r in sink.requests if r.headers.get("Idempotency-Key") == event_id)
        assert all(b - a >= 0.1 for a, b in zip(seen, seen[1:], strict=False))
