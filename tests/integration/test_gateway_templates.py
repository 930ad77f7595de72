"""Templates at the API: refused when they do not compile (save and dry-run), 422 when a dry-run hits a limit."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.helpers.executor_app import ExecutorFactory
from tests.helpers.gateway_app import WEBHOOK_WORKFLOW, Gateway, post_dry_run, slack_text, tenant

NESTED_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


def http_workflow(body: Any, url: str = "https://example.invalid/hook") -> dict[str, Any]:
    return {
        "name": "http",
        "trigger": {"type": "webhook"},
        "action": {"type": "http_request", "config": {"method": "POST", "url": url, "body": body}},
    }


async def test_saving_a_template_that_does_not_compile_is_422_naming_the_field(gw: Gateway, tenant_id: uuid.UUID):
    auth = gw.auth(tenant_id)

    resp = await gw.client.post("/api/workflows", json=slack_text("New order {{ payload.order_id }"), headers=auth)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [
        {"field": "action.config.text", "message": "unexpected '}' (line 1)", "type": "invalid_template"}
    ]

    resp = await gw.client.post("/api/workflows", json=http_workflow({"items": ["{% if x %}open", "ok"]}), headers=auth)
    assert resp.status == 422
    [detail] = (await resp.json())["error"]["details"]
    assert detail["field"] == "action.config.body.items.0" and "endif" in detail["message"]

    created = await gw.client.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=auth)
    assert created.status == 201
    wid = (await created.json())["data"]["id"]
    replaced = await gw.client.put(
        f"/api/workflows/{wid}", json=slack_text("{{ payload.a|no_such_filter }}"), headers=auth
    )
    assert replaced.status == 422
    assert (await replaced.json())["error"]["details"][0]["field"] == "action.config.text"
    versions = (await (await gw.client.get(f"/api/workflows/{wid}/versions", headers=auth)).json())["data"]
    assert [v["version"] for v in versions] == [1]  # nothing was stored


async def test_a_dry_run_whose_template_does_not_compile_is_refused_before_the_executor(gw: Gateway, database_url: str):
    auth = gw.auth(await tenant(database_url))
    # No executor is running: a valid dry-run would be 503; this one never gets that far.
    resp = await post_dry_run(gw, auth, http_workflow({"text": "{{ payload.x "}))
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_template"
    assert error["details"][0]["field"] == "workflow.action.config.body.text"
    assert error["details"][0]["type"] == "invalid_template"


async def test_a_dry_run_of_a_template_that_never_ends_is_422_within_seconds(
    gw: Gateway, database_url: str, executor: ExecutorFactory
):
    auth = gw.auth(await tenant(database_url))
    # Only the clock may stop the template: on a busy machine the step limit could be reached first.
    await executor(IPAAS_EXECUTOR_TEMPLATE_MAX_ITERATIONS=str(10**12))

    resp = await asyncio.wait_for(post_dry_run(gw, auth, http_workflow({"text": NESTED_LOOPS})), timeout=5.0)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "template_limit_exceeded"
    assert error["message"] == "template error in action.config.body.text: template took longer than 100 ms"
    assert error["details"] == [
        {"field": "workflow.action.config.body.text", "message": error["message"], "type": "template_limit_exceeded"}
    ]

    # Other template failures keep the 200 "failed" contract, now with a code and the field.
    resp = await post_dry_run(gw, auth, http_workflow({"text": "{{ payload.missing }}"}))
    assert resp.status == 200
    data = (await resp.json())["data"]
    assert data["status"] == "failed" and data["error_code"] == "template_error"
    assert data["error_field"] == "action.config.body.text" and "missing" in data["error"]
