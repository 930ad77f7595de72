"""Dry runs over NATS request/reply: the action runs for real and no execution is recorded."""

from __future__ import annotations

import json

from tests.helpers.fakes import Answer, always, definition

SUBJECT = "svc.executor.dry_run"


async def test_dry_run_runs_the_action_and_records_nothing(bus, db, sink, slack_tenant, executor):
    tenant, cred = slack_tenant
    await executor()
    wf = definition("slack_message", {"text": "Hello {{ payload.name }}"}, cred)
    req = {"tenant_id": str(tenant), "workflow": wf, "payload": {"name": "Ada"}}
    reply = json.loads((await bus.nc.request(SUBJECT, json.dumps(req).encode(), timeout=10)).data)
    assert reply["status"] == "succeeded" and reply["error"] is None
    assert reply["output"]["delivered"] is True and isinstance(reply["duration_ms"], int)
    assert sink.requests[0].json() == {"text": "Hello Ada"}

    sink.behaviour = always(Answer(404, "no_service"))
    reply = json.loads((await bus.nc.request(SUBJECT, json.dumps(req).encode(), timeout=10)).data)
    assert reply["status"] == "failed" and "404" in reply["error"]

    bad = {"tenant_id": str(tenant), "workflow": {"name": "x"}, "payload": {}}
    reply = json.loads((await bus.nc.request(SUBJECT, json.dumps(bad).encode(), timeout=10)).data)
    assert reply["status"] == "failed" and reply["error"].startswith("invalid dry-run request")
    reply = json.loads((await bus.nc.request(SUBJECT, b"not json", timeout=10)).data)
    assert reply["status"] == "failed"

    assert await db.fetchval("SELECT count(*) FROM executions") == 0
