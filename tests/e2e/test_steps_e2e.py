"""A three-step workflow (HTTP lookup, filter, Slack) through the public API, as processes.

Auth, gateway, scheduler and executor run as in a deployment.  The same steps run from a signed
webhook, a manual run and a schedule: the lookup's mapped response flows into the filter and into
Slack, whose fake receives typed block fields; a customer under the filter's amount ends the
execution ``filtered``, and Slack is never called for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Platform
from tests.helpers.fakes import Answer, Seen
from tests.helpers.scheduler import scheduler_env
from tests.helpers.services import ServiceProcess
from tests.helpers.stack_processes import Api
from tests.helpers.wait import wait_until

CUSTOMERS = {
    "C-1": {"name": "Ada", "amount": 250, "fields": [{"type": "mrkdwn", "text": "*tier* gold"}]},
    "C-2": {"name": "Bob", "amount": 40, "fields": []},
}


@pytest.fixture
async def stack(platform: Platform, service: Callable[..., ServiceProcess], database_url: str, nats_url: str) -> Api:
    often = {"IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS": "1", "IPAAS_GATEWAY_OUTBOX_POLL_SECONDS": "0.2"}
    stack = await platform(gateway=often)
    service("services.scheduler", env=scheduler_env(nats_url, database_url))
    return stack


def lookup(req: Seen, _n: int) -> Answer:
    customer = CUSTOMERS.get(req.path.rsplit("/", 1)[-1])
    if customer is None:
        return Answer(404, "no such customer")
    return Answer(200, json.dumps({"customer": customer}))


def three_steps(trigger: dict[str, Any], lookup_url: str, credential_id: str) -> dict[str, Any]:
    return {
        "name": "big payments to slack",
        "trigger": trigger,
        "steps": [
            {
                "id": "lookup",
                "action": {
                    "type": "http_request",
                    "config": {
                        "method": "GET",
                        "url": lookup_url + "/customers/{{ payload.customer | default('C-1') }}",
                        "response": {"name": "customer.name", "amount": "customer.amount", "fields": "customer.fields"},
                    },
                },
            },
            {"id": "big", "filter": {"condition": "steps.lookup.output.data.amount > 100"}},
            {
                "id": "notify",
                "action": {
                    "type": "slack_message",
                    "credential_id": credential_id,
                    "config": {
                        "text": "{{ steps.lookup.output.data.name }} paid {{ steps.lookup.output.data.amount }}",
                        "blocks": [
                            {
                                "type": "section",
                                "text": {"type": "mrkdwn", "text": "via {{ trigger.type }}"},
                                "fields": "{{ steps.lookup.output.data.fields }}",
                            }
                        ],
                    },
                },
            },
        ],
    }


async def wait_final(stack: Api, workflow_id: str, event_id: str | None = None) -> dict[str, Any]:
    async def final() -> Any:
        page = await stack.data("GET", f"/api/executions?workflow_id={workflow_id}", expect=200)
        mine = [e for e in page if event_id is None or e["event_id"] == event_id]
        return next((e for e in mine if e["status"] in ("succeeded", "filtered", "dead")), None)

    found: dict[str, Any] = await wait_until(final, timeout=30, message="a final execution")
    return found


async def test_lookup_filter_slack_from_a_signed_webhook_a_manual_run_and_a_schedule(stack: Api, sinks: Any) -> None:
    slack, crm = await sinks(), await sinks(lookup)
    cred = await stack.credential("slack", "slack", {"webhook_url": f"{slack.url}/services/T1/B1/SECRET"})
    hooked = await stack.data(
        "POST", "/api/workflows", three_steps({"type": "webhook"}, crm.url, cred["id"]), expect=201
    )
    assert [s["id"] for s in hooked["steps"]] == ["lookup", "big", "notify"]

    # 1. A signed webhook for a big customer: every step runs, outputs flow, Slack gets typed fields.
    event_id, _ = await stack.webhook(hooked, {"customer": "C-1"})
    execution = await wait_final(stack, hooked["id"], event_id)
    assert execution["status"] == "succeeded", execution["error"]
    assert slack.requests[0].json() == {
        "text": "Ada paid 250",
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "via webhook"},
                "fields": [{"type": "mrkdwn", "text": "*tier* gold"}],  # a list, not its text
            }
        ],
    }
    detail = await stack.data("GET", f"/api/executions/{execution['id']}", expect=200)
    assert [(s["id"], s["status"], s["attempts"]) for s in detail["steps"]] == [
        ("lookup", "succeeded", 1),
        ("big", "succeeded", 1),
        ("notify", "succeeded", 1),
    ]
    assert detail["steps"][0]["output"]["data"]["amount"] == 250
    assert detail["steps"][1]["output"] == {"passed": True}
    assert "SECRET" not in json.dumps(detail)

    # 2. A manual run for a small customer: the filter is false, the execution ends filtered.
    run = await stack.data("POST", f"/api/workflows/{hooked['id']}/run", {"payload": {"customer": "C-2"}}, expect=202)
    small = await wait_final(stack, hooked["id"], run["event_id"])
    assert small["status"] == "filtered" and small["error"] is None
    filtered = await stack.data("GET", f"/api/executions?status=filtered&workflow_id={hooked['id']}", expect=200)
    assert [e["event_id"] for e in filtered] == [run["event_id"]]
    assert len(slack.requests) == 1  # Slack never heard of Bob
    assert [r.path for r in crm.requests] == ["/customers/C-1", "/customers/C-2"]

    # 3. A schedule: the payload has no customer, the default one is looked up and posted.
    scheduled = await stack.data(
        "POST",
        "/api/workflows",
        three_steps({"type": "schedule", "interval_seconds": 1}, crm.url, cred["id"]),
        expect=201,
    )
    tick = await wait_final(stack, scheduled["id"])
    await stack.data("PATCH", f"/api/workflows/{scheduled['id']}", {"is_active": False}, expect=200)
    assert tick["status"] == "succeeded", tick["error"]
    assert tick["trigger"] == "schedule"
    posted = [r.json() for r in slack.requests[1:]]
    assert posted and all(p["text"] == "Ada paid 250" for p in posted)
    assert posted[0]["blocks"][0]["text"]["text"] == "via schedule"
