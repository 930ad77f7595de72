"""Connector options end to end (executor as a process, real NATS and Postgres, fake targets).

- ``http_request``: query parameters, a form body, and a response mapping whose parts land in the output;
  a JSON body of typed templates carries numbers, booleans and lists to the target as such;
- Slack ``blocks`` and Discord ``embeds`` reach the target with typed values;
- ``nats_publish``: the rendered payload reaches a subscriber on the tenant's own subject, once per event.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import nats
import pytest
from pydantic import ValidationError

from libs.common.models.workflows import WorkflowDefinition
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import (
    Answer,
    always,
    definition,
    executor_env,
    final_row,
    publish_event,
)
from tests.helpers.wait import wait_until


@pytest.fixture
def run_http_request(bus, db, nats_url, database_url, service) -> Callable[..., Awaitable[Any]]:
    """``await run_http_request(config, payload)``: one event with ``payload`` through a new tenant's
    ``http_request`` workflow with ``config``, run by an executor process; returns its row, once succeeded."""

    async def run(config: dict[str, Any], payload: dict[str, Any]) -> Any:
        tenant = await create_tenant(db)
        wf = await create_workflow(db, tenant, definition("http_request", config))
        service("services.executor", env=executor_env(nats_url, database_url))
        event = await publish_event(bus, tenant, wf, payload)
        row = await final_row(db, event.event_id)
        assert row["status"] == "succeeded", row["error"]
        return row

    return run


async def test_http_query_form_and_response_mapping(run_http_request, sink):
    answer = {"data": {"id": "cus_9", "tags": ["vip"]}, "items": [{"n": 1}, {"n": 2}]}
    sink.behaviour = always(Answer(200, json.dumps(answer), {"Content-Type": "application/json"}))
    row = await run_http_request(
        {
            "method": "POST",
            "url": f"{sink.url}/lookup?fixed=1",
            "query": {"email": "{{ payload.email }}", "n": "{{ payload.n }}"},
            "form": {"name": "{{ payload.name }}", "note": "a&b=c"},
            "response": {
                "customer": "data.id",
                "first_tag": "data.tags.0",
                "second": "items.1.n",
                "missing": "data.nope.deeper",
            },
        },
        {"email": "ada@example.com", "n": 3, "name": "Ada L"},
    )
    seen = sink.paths("/lookup")[0]
    assert seen.query == {"fixed": "1", "email": "ada@example.com", "n": "3"}
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(seen.body.decode()) == {"name": ["Ada L"], "note": ["a&b=c"]}
    output = json.loads(row["output"]) if isinstance(row["output"], str) else row["output"]
    assert output["data"] == {"customer": "cus_9", "first_tag": "vip", "second": 2, "missing": None}


async def test_a_json_body_carries_typed_values_to_the_target(run_http_request, sink):
    await run_http_request(
        {
            "method": "POST",
            "url": f"{sink.url}/orders",
            "body": {
                "amount": "{{ payload.amount }}",
                "paid": "{{ payload.amount > 100 }}",
                "skus": "{{ payload.lines | map(attribute='sku') | list }}",
                "label": "order {{ payload.id }}",
                "id": "{{ payload.id }}",
                "day": "{{ payload.at | date('%Y-%m-%d') }}",
            },
        },
        {"amount": 142.5, "id": "A-17", "at": "2026-03-04T05:06:07Z", "lines": [{"sku": "S-1"}, {"sku": "S-2"}]},
    )
    assert sink.paths("/orders")[0].json() == {
        "amount": 142.5,
        "paid": True,
        "skus": ["S-1", "S-2"],
        "label": "order A-17",
        "id": "A-17",
        "day": "2026-03-04",
    }


async def test_slack_blocks_and_discord_embeds(bus, db, nats_url, database_url, service, sinks, creds):
    slack, discord = await sinks(), await sinks(always(Answer(204, "")))
    tenant = await create_tenant(db)
    slack_cred = creds.add(tenant, "slack", {"webhook_url": f"{slack.url}/services/T/B/X"})
    discord_cred = creds.add(tenant, "discord", {"webhook_url": f"{discord.url}/api/webhooks/1/abc"})
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*{{ payload.title }}*"}},
        {"type": "context", "elements": "{{ payload.elements }}"},
    ]
    to_slack = await create_workflow(
        db,
        tenant,
        definition("slack_message", {"text": "fallback {{ payload.title }}", "blocks": blocks}, slack_cred, name="s"),
    )
    to_discord = await create_workflow(
        db,
        tenant,
        definition(
            "discord_message",
            {"embeds": [{"title": "{{ payload.title }}", "color": "{{ payload.color }}"}]},
            discord_cred,
            name="d",
        ),
    )
    service("services.executor", env=executor_env(nats_url, database_url))
    payload = {"title": "Paid", "color": 5814783, "elements": [{"type": "mrkdwn", "text": "42 EUR"}]}
    events = [await publish_event(bus, tenant, wf, payload) for wf in (to_slack, to_discord)]
    for event in events:
        assert (await final_row(db, event.event_id))["status"] == "succeeded"
    assert slack.requests[0].json() == {
        "text": "fallback Paid",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Paid*"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "42 EUR"}]},
        ],
    }
    assert discord.requests[0].json() == {"embeds": [{"title": "Paid", "color": 5814783}]}


async def test_nats_publish_reaches_the_tenants_own_subject(bus, db, nats_url, database_url, service):
    tenant, other = await create_tenant(db), await create_tenant(db)
    wf = await create_workflow(
        db,
        tenant,
        definition(
            "nats_publish",
            {"subject": "orders.paid", "payload": {"id": "{{ payload.id }}", "amount": "{{ payload.amount }}"}},
        ),
    )
    listener = await nats.connect(nats_url)
    got: list[tuple[str, bytes, str]] = []

    async def seen(msg: object) -> None:
        got.append((msg.subject, msg.data, (msg.headers or {}).get("Idempotency-Key", "")))  # type: ignore[attr-defined]

    try:
        await listener.subscribe("out.>", cb=seen)
        await listener.flush()
        service("services.executor", env=executor_env(nats_url, database_url))
        event = await publish_event(bus, tenant, wf, {"id": "A-1", "amount": 12.5})
        row = await final_row(db, event.event_id)
        assert row["status"] == "succeeded", row["error"]
        await wait_until(lambda: got, timeout=5, message="the published message")
        await asyncio.sleep(0.3)
        assert got == [(f"out.{tenant}.orders.paid", b'{"id":"A-1","amount":12.5}', str(event.event_id))]
        assert str(other) not in got[0][0]
    finally:
        await listener.close()


@pytest.mark.parametrize("subject", ["orders.*", "orders.>", "a..b", "", ".a", "a b", "x" * 65])
def test_nats_publish_subjects_stay_under_the_tenant(subject: str) -> None:
    with pytest.raises(ValidationError):
        WorkflowDefinition.model_validate(definition("nats_publish", {"subject": subject}))


def test_form_and_body_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="body or form"):
        WorkflowDefinition.model_validate(
            definition("http_request", {"url": "https://example.com", "body": {"a": 1}, "form": {"a": "1"}})
        )
    with pytest.raises(ValidationError):
        WorkflowDefinition.model_validate(
            definition("http_request", {"url": "https://example.com", "response": {"x": "bad path!"}})
        )
    with pytest.raises(ValidationError, match="content, embeds"):
        WorkflowDefinition.model_validate(definition("discord_message", {}, uuid.uuid4()))
