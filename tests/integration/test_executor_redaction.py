"""Issue 10 item 3: the values the executor resolved from a credential never come back out.

A target echoes what it was sent (headers, path, query) in its success and
error bodies.  The executions, their history, the dead letters (rows and DLQ
stream), dry-run replies, the gateway's answers and the executor's log lines
then hold none of the planted values.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import (
    Answer,
    Seen,
    definition,
    executor_env,
    final_row,
    publish_event,
)
from tests.helpers.gateway_app import running_gateway

DRY_RUN = "svc.executor.dry_run"


def _planted() -> dict[str, str]:
    tag = secrets.token_hex(6)
    return {
        "bearer": f"Bearer pl4nt-bearer-{tag}",
        "custom": f"pl4nt-custom-{tag}",
        "slack": f"pl4ntslack{tag}",
        "openweather": f"pl4nt-ow-{tag}",
        "slack_bot": f"xoxb-pl4nt-bot-{tag}",
    }


def _echo(seen: Seen, _n: int) -> Answer:
    """What a careless target does: it sends back what it received."""
    if seen.path == "/echo-ok":
        return Answer(200, json.dumps({"you_sent": seen.headers}))
    if seen.path == "/echo-fail":
        # The bearer value straddles the 200 characters an error keeps of a body.
        custom, bearer = seen.headers.get("X-Custom-Key", ""), seen.headers.get("Authorization", "")
        head = f"rejected X-Custom-Key={custom} Authorization="
        return Answer(500, head + "." * (190 - len(head)) + bearer)
    if seen.path.startswith("/services/"):
        return Answer(404, f"no_service at {seen.path}")
    if seen.path == "/api/chat.postMessage":
        # A careless Slack: the token in an error body, and in an ok:false code.
        auth = seen.headers.get("Authorization", "")
        if json.loads(seen.body).get("channel") == "C-500":
            return Answer(503, f"upstream saw {auth}")
        return Answer(200, json.dumps({"ok": False, "error": f"invalid_auth {auth}"}))
    if seen.path == "/data/2.5/weather":
        appid = seen.query.get("appid", "")
        if seen.query.get("q") == "Echo":
            return Answer(200, json.dumps({"name": appid, "main": {"temp": 1}, "weather": [{"description": appid}]}))
        return Answer(401, json.dumps({"cod": 401, "message": f"Invalid API key {appid}"}))
    return Answer(404, "unknown")


def _hits(text: str, planted: dict[str, str]) -> list[str]:
    needles = [*planted.values(), planted["bearer"].split(" ", 1)[1]]
    return [n for n in needles if n in text]


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_resolved_values_never_leave_the_executor(bus, db, nats_url, database_url, service, sink, creds):
    planted = _planted()
    sink.behaviour = _echo
    dlq_sub = await bus.js.subscribe("dlq.>", durable=None)
    tenant = await create_tenant(db)
    http_cred = creds.add(
        tenant, "http", {"headers": {"Authorization": planted["bearer"], "X-Custom-Key": planted["custom"]}}
    )
    slack_cred = creds.add(tenant, "slack", {"webhook_url": f"{sink.url}/services/T0/B0/{planted['slack']}"})
    ow_cred = creds.add(tenant, "openweather", {"api_key": planted["openweather"]})
    bot_cred = creds.add(tenant, "slack", {"bot_token": planted["slack_bot"]})
    actions: dict[str, dict[str, Any]] = {
        "http_ok": definition(
            "http_request", {"method": "POST", "url": f"{sink.url}/echo-ok", "body": {"n": 1}}, http_cred
        ),
        "http_fail": definition(
            "http_request", {"method": "POST", "url": f"{sink.url}/echo-fail", "body": {"n": 2}}, http_cred
        ),
        "slack_fail": definition("slack_message", {"text": "hi"}, slack_cred),
        "slack_api_503": definition("slack_message", {"text": "hi", "channel": "C-500"}, bot_cred),
        "slack_api_not_ok": definition("slack_message", {"text": "hi", "channel": "C-1"}, bot_cred),
        "ow_ok": definition("openweather", {"city": "Echo"}, ow_cred),
        "ow_fail": definition("openweather", {"city": "Paris"}, ow_cred),
    }
    workflows = {name: await create_workflow(db, tenant, d) for name, d in actions.items()}
    executor = service(
        "services.executor",
        env=executor_env(
            nats_url,
            database_url,
            IPAAS_EXECUTOR_MAX_ATTEMPTS="2",
            IPAAS_EXECUTOR_BACKOFF_MAX_SECONDS="0.3",
            IPAAS_EXECUTOR_OPENWEATHER_URL=sink.url,
            IPAAS_EXECUTOR_SLACK_API_URL=sink.url,
        ),
    )
    events = {name: await publish_event(bus, tenant, wf, {"i": name}) for name, wf in workflows.items()}
    rows = {name: await final_row(db, e.event_id) for name, e in events.items()}
    expected = {n: "succeeded" if n in ("http_ok", "ow_ok") else "dead" for n in actions}
    assert {n: r["status"] for n, r in rows.items()} == expected

    replies: list[str] = []
    for name in ("http_ok", "http_fail", "ow_ok"):
        req = {"tenant_id": str(tenant), "workflow": actions[name], "payload": {}}
        replies.append((await bus.nc.request(DRY_RUN, json.dumps(req).encode(), timeout=10)).data.decode())
    assert [json.loads(r)["status"] for r in replies] == ["succeeded", "failed", "succeeded"]

    # The planted values did reach the target (and came back in its answers): a leak would be visible.
    seen = json.dumps([[r.path, r.query, r.headers] for r in sink.requests])
    assert sorted(_hits(seen, planted)) == sorted(_hits(" ".join([*planted.values(), planted["bearer"]]), planted))
    # What was kept still says what happened, with the values replaced.
    assert "[REDACTED]" in json.dumps(rows["http_ok"]["output"])
    assert "500" in rows["http_fail"]["error"] and "rejected X-Custom-Key=[REDACTED]" in rows["http_fail"]["error"]
    assert "no_service" in rows["slack_fail"]["error"] and "401" in rows["ow_fail"]["error"]
    assert "upstream saw Bearer [REDACTED]" in rows["slack_api_503"]["error"]
    assert "unreadable error code" in rows["slack_api_not_ok"]["error"]

    stored = [json.dumps([dict(r) for r in rows.values()], default=str)]
    for table in ("executions", "execution_attempts", "dead_letters"):
        stored += [r[0] for r in await db.fetch(f"SELECT row_to_json(t)::text FROM {table} t")]
    letters: list[str] = []
    while len(letters) < 5:
        letters.append((await dlq_sub.next_msg(timeout=5)).data.decode())

    async with running_gateway(database_url, nats_url) as gw:
        auth = gw.auth(tenant)
        api = [
            await (await gw.client.get("/api/executions", headers=auth)).text(),
            await (await gw.client.get("/api/dlq", headers=auth)).text(),
        ]
        for row in rows.values():
            resp = await gw.client.get(f"/api/executions/{row['id']}", headers=auth)
            assert resp.status == 200
            api.append(await resp.text())
    assert all(_hits(text, planted) == [] for text in api)

    logs = executor.logs()
    assert "event dead-lettered" in logs
    found = {
        "rows": [_hits(s, planted) for s in stored if _hits(s, planted)],
        "dlq": [_hits(s, planted) for s in letters if _hits(s, planted)],
        "dry_run": [_hits(s, planted) for s in replies if _hits(s, planted)],
        "logs": [line for line in logs.splitlines() if _hits(line, planted)],
    }
    assert found == {"rows": [], "dlq": [], "dry_run": [], "logs": []}
