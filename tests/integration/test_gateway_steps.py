"""Definitions at the API.

Multi-step workflows: bad step graphs are 422 naming the field, both forms are stored and shown as sent, a
dry-run returns every step's output and records nothing, and a DLQ replay resumes at the step that died
(or, with ``from_start``, runs every step again).

Templates: refused when they do not compile (save and dry-run), 422 when a dry-run hits a limit.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers.executor_app import ExecutorFactory
from tests.helpers.fakes import (
    Answer,
    FakeSink,
    Seen,
    definition,
    execution_row,
    final_row,
    http_step,
    steps_workflow,
)
from tests.helpers.gateway_app import WEBHOOK_WORKFLOW, Gateway, create_webhook_workflow, post_dry_run, slack_text

URL = "https://example.invalid/hook"
NESTED_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


def http_workflow(body: Any) -> dict[str, Any]:
    return definition("http_request", {"method": "POST", "url": URL, "body": body}, name="http")


# (steps, what the one detail holds exactly, what its message says)
BAD_GRAPHS: list[tuple[list[dict[str, Any]], dict[str, str], str]] = [
    (
        [http_step("a", URL, {"x": "{{ steps.b.output.id }}"}), http_step("b", URL), http_step("c", URL)],
        {"field": "steps.0.action.config.body.x", "type": "invalid_step"},
        "steps.b",
    ),
    (
        [http_step("a", URL), http_step("a", URL)],
        {"field": "steps.1.id", "message": "duplicate step id 'a'", "type": "invalid_step"},
        "",
    ),
    ([http_step(f"s{i}", URL) for i in range(21)], {"field": "steps", "type": "too_long"}, ""),
    (
        [http_step("a", URL), {"id": "f", "filter": {"condition": "steps.a.output.n >"}}],
        {"field": "steps.1.filter.condition", "type": "invalid_template"},
        "",
    ),
    (
        [http_step("a", URL, {"t": "{{ payload.x }"})],
        {"field": "steps.0.action.config.body.t", "type": "invalid_template"},
        "",
    ),
    ([{"id": "a"}], {"field": "steps.0"}, "exactly one of 'action' or 'filter'"),
    ([http_step("not-a-name", URL)], {"field": "steps.0.id"}, ""),
]


# (a definition, as BAD_GRAPHS)
BAD_DEFINITIONS: list[tuple[dict[str, Any], dict[str, str], str]] = [
    ({**WEBHOOK_WORKFLOW, "steps": [http_step("a", URL)]}, {}, "exactly one of 'action' or 'steps'"),
    (
        slack_text("New order {{ payload.order_id }"),
        {"field": "action.config.text", "message": "unexpected '}' (line 1)", "type": "invalid_template"},
        "",
    ),
    (http_workflow({"items": ["{% if x %}open", "ok"]}), {"field": "action.config.body.items.0"}, "endif"),
]


async def test_bad_step_graphs_and_templates_that_do_not_compile_are_422_with_the_field_path(
    gw: Gateway, tenant_id: uuid.UUID
):
    auth = gw.auth(tenant_id)
    bodies = [(steps_workflow(steps), held, says) for steps, held, says in BAD_GRAPHS]
    for body, held, says in [*bodies, *BAD_DEFINITIONS]:
        resp = await gw.client.post("/api/workflows", json=body, headers=auth)
        assert resp.status == 422, await resp.text()
        error = (await resp.json())["error"]
        assert error["code"] == "validation_error"
        [detail] = error["details"]
        assert detail.keys() == {"field", "message", "type"}, detail
        assert {key: detail[key] for key in held} == held and says in detail["message"], detail
    listed = (await (await gw.client.get("/api/workflows", headers=auth)).json())["data"]
    assert listed == []  # nothing was stored


async def test_both_forms_are_stored_and_shown_as_sent(gw: Gateway, tenant_id: uuid.UUID):
    auth = gw.auth(tenant_id)
    single = await gw.client.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=auth)
    assert single.status == 201
    data = (await single.json())["data"]
    assert data["action"] == WEBHOOK_WORKFLOW["action"] and "steps" not in data

    steps = [
        http_step("lookup", URL, {"id": "{{ payload.id }}"}, timeout_seconds=5, retry={"max_attempts": 2}),
        {"id": "big", "filter": {"condition": "payload.amount > 100"}},
        http_step("post", URL, {"n": "{{ steps.lookup.output.status }}"}, continue_on_error=True),
    ]
    multi = await gw.client.post("/api/workflows", json=steps_workflow(steps), headers=auth)
    assert multi.status == 201, await multi.text()
    data = (await multi.json())["data"]
    assert "action" not in data
    shown = data["steps"]
    assert [s["id"] for s in shown] == ["lookup", "big", "post"]
    assert shown[0]["action"]["config"]["body"] == {"id": "{{ payload.id }}"}
    assert shown[0]["timeout_seconds"] == 5 and shown[0]["retry"] == {"max_attempts": 2}
    assert shown[1] == {"id": "big", "filter": {"condition": "payload.amount > 100"}}  # defaults left out
    assert shown[2]["continue_on_error"] is True and "continue_on_error" not in shown[0]
    got = (await (await gw.client.get(f"/api/workflows/{data['id']}", headers=auth)).json())["data"]
    assert got["steps"] == shown
    versions = (await (await gw.client.get(f"/api/workflows/{data['id']}/versions", headers=auth)).json())["data"]
    assert versions[0]["definition"]["steps"] == shown and "action" not in versions[0]["definition"]


@pytest.mark.slow
async def test_a_dry_run_returns_every_steps_output_and_records_nothing(
    gw: Gateway, tenant_id: uuid.UUID, db: Any, executor: ExecutorFactory, sinks: Any
):
    def answer(req: Seen, _n: int) -> Answer:
        if req.path == "/lookup":
            return Answer(200, json.dumps({"customer": {"name": "Ada", "tier": 3}}))
        return Answer(200, json.dumps({"posted": req.json()}))

    sink = await sinks(answer)
    auth = gw.auth(tenant_id)
    await executor()
    workflow = steps_workflow(
        [
            http_step("lookup", f"{sink.url}/lookup", {"q": "{{ payload.q }}"}),
            {"id": "gold", "filter": {"condition": "steps.lookup.output.body.customer.tier > 2"}},
            http_step("post", f"{sink.url}/post", {"tier": "{{ steps.lookup.output.body.customer.tier }}"}),
        ]
    )
    before = await db.fetchval("SELECT count(*) FROM executions")
    resp = await post_dry_run(gw, auth, workflow, {"q": 1})
    assert resp.status == 200, await resp.text()
    data = (await resp.json())["data"]
    assert data["status"] == "succeeded", data
    assert [(s["id"], s["status"]) for s in data["steps"]] == [
        ("lookup", "succeeded"),
        ("gold", "succeeded"),
        ("post", "succeeded"),
    ]
    assert data["steps"][1]["output"] == {"passed": True}
    assert data["steps"][0]["output"] == {"status": 200, "body": {"customer": {"name": "Ada", "tier": 3}}}
    assert sink.paths("/lookup")[0].json() == {"q": 1}
    assert sink.paths("/post")[0].json() == {"tier": 3}  # typed: the number, not "3"
    assert data["steps"][2]["output"]["body"] == {"posted": {"tier": 3}}
    assert data["output"] == data["steps"][2]["output"]
    keys = [r.headers["Idempotency-Key"] for r in sink.requests]
    assert keys[0].endswith(":lookup") and keys[1].endswith(":post")
    assert await db.fetchval("SELECT count(*) FROM executions") == before
    assert await db.fetchval("SELECT count(*) FROM execution_steps") == 0

    filtered = steps_workflow(
        [{"id": "never", "filter": {"condition": "payload.q > 5"}}, http_step("post", f"{sink.url}/post")]
    )
    resp = await post_dry_run(gw, auth, filtered, {"q": 1})
    data = (await resp.json())["data"]
    assert data["status"] == "filtered"
    assert data["steps"] == [
        {
            "id": "never",
            "status": "filtered",
            "output": {"passed": False},
            "error": None,
            "duration_ms": data["steps"][0]["duration_ms"],
        }
    ]
    assert len(sink.paths("/post")) == 1  # the filtered dry-run posted nothing


async def run_to(db: Any, event_id: uuid.UUID, status: str) -> Any:
    return await final_row(db, event_id, timeout=30, statuses=(status,))


@dataclass
class SecondStepRefused:
    """A tenant's two-step workflow (``/first``, ``/second`` on ``sink``) whose second step is refused (400)
    while ``broken``, and the executor running."""

    auth: dict[str, str]
    workflow_id: str
    sink: FakeSink
    broken: bool = True


@pytest.fixture
async def second_refused(
    gw: Gateway, tenant_id: uuid.UUID, executor: ExecutorFactory, sink: FakeSink
) -> SecondStepRefused:
    setup = SecondStepRefused(gw.auth(tenant_id), "", sink)
    sink.behaviour = lambda req, _n: (
        Answer(400, "refused") if req.path == "/second" and setup.broken else Answer(200, "{}")
    )
    await executor()
    steps = [http_step("first", f"{sink.url}/first"), http_step("second", f"{sink.url}/second")]
    created = await gw.client.post("/api/workflows", headers=setup.auth, json=steps_workflow(steps))
    setup.workflow_id = (await created.json())["data"]["id"]
    return setup


@pytest.mark.slow
async def test_a_replay_resumes_at_the_step_that_died_and_from_start_runs_every_step(
    gw: Gateway, db: Any, second_refused: SecondStepRefused
):
    auth, wid, sink = second_refused.auth, second_refused.workflow_id, second_refused.sink
    events = []
    for _ in range(2):
        run = await gw.client.post(f"/api/workflows/{wid}/run", headers=auth, json={"payload": {}})
        assert run.status == 202
        events.append(uuid.UUID((await run.json())["data"]["event_id"]))
    for event_id in events:
        await run_to(db, event_id, "dead")
    assert len(sink.paths("/first")) == 2 and len(sink.paths("/second")) == 2

    detail = await gw.client.get(f"/api/executions/{(await execution_row(db, events[0]))['id']}", headers=auth)
    steps = (await detail.json())["data"]["steps"]
    assert [(s["id"], s["status"], s["attempts"]) for s in steps] == [
        ("first", "succeeded", 1),
        ("second", "dead", 1),
    ]
    assert steps[1]["error"].startswith("step second:") and steps[0]["duration_ms"] is not None

    second_refused.broken = False
    resumed = await gw.client.post(f"/api/dlq/{events[0]}/replay", headers=auth)
    assert resumed.status == 202
    again = await gw.client.post(f"/api/dlq/{events[1]}/replay", headers=auth, json={"from_start": True})
    assert again.status == 202, await again.text()
    for event_id in events:
        await run_to(db, event_id, "succeeded")
    firsts = [r.headers["Idempotency-Key"] for r in sink.paths("/first")]
    assert firsts.count(f"{events[0]}:first") == 1  # resumed at the step that died
    assert firsts.count(f"{events[1]}:first") == 2  # from the start
    assert len(sink.paths("/second")) == 4

    bad = await gw.client.post(f"/api/dlq/{events[0]}/replay", headers=auth, json={"from_start": "yes"})
    assert bad.status == 422


@pytest.mark.slow
async def test_a_bulk_replay_from_start_runs_every_step_again(gw: Gateway, db: Any, second_refused: SecondStepRefused):
    auth, wid, sink = second_refused.auth, second_refused.workflow_id, second_refused.sink
    run = await gw.client.post(f"/api/workflows/{wid}/run", headers=auth, json={"payload": {}})
    event_id = uuid.UUID((await run.json())["data"]["event_id"])
    await run_to(db, event_id, "dead")

    alone = await gw.client.post("/api/dlq/replay", headers=auth, json={"from_start": True})
    assert alone.status == 422  # an option, not a filter: a replay still needs one

    second_refused.broken = False
    job = await gw.client.post("/api/dlq/replay", headers=auth, json={"workflow_id": wid, "from_start": True})
    assert job.status == 202, await job.text()
    assert (await job.json())["data"]["total"] == 1
    await run_to(db, event_id, "succeeded")
    assert [r.headers["Idempotency-Key"] for r in sink.paths("/first")] == [f"{event_id}:first"] * 2
    steps = await db.fetch("SELECT step_id, attempts FROM execution_steps WHERE event_id = $1", event_id)
    assert {(s["step_id"], s["attempts"]) for s in steps} == {("first", 1), ("second", 1)}


# (definition, the error's code and message (None: not checked), its details' (field, type) pairs in order)
UNSOUND: list[tuple[dict[str, Any], str, str | None, list[tuple[str, str]]]] = [
    (
        steps_workflow([http_step("a", URL, {"x": "{{ steps.b.output }}"}), http_step("b", URL)]),
        "invalid_step",
        "the steps are not sound",
        [("workflow.steps.0.action.config.body.x", "invalid_step")],
    ),
    (
        http_workflow({"text": "{{ payload.x "}),
        "invalid_template",
        None,
        [("workflow.action.config.body.text", "invalid_template")],
    ),
    (
        steps_workflow([http_step("a", URL, {"x": "{{ payload.x "})]),
        "invalid_template",
        None,
        [("workflow.steps.0.action.config.body.x", "invalid_template")],
    ),
    (
        steps_workflow([http_step("a", URL, {"x": "{{ payload.x "}), http_step("a", URL)]),
        "invalid_definition",
        None,
        [("workflow.steps.0.action.config.body.x", "invalid_template"), ("workflow.steps.1.id", "invalid_step")],
    ),
]


async def test_a_dry_run_of_an_unsound_definition_is_refused_before_the_executor(gw: Gateway, tenant_id: uuid.UUID):
    """No executor is running: a sound dry-run would be 503; these never get that far.  The code says what the
    details are: step errors only (``invalid_step``), templates only (``invalid_template``), or both."""
    auth = gw.auth(tenant_id)
    for workflow, code, message, details in UNSOUND:
        resp = await post_dry_run(gw, auth, workflow)
        assert resp.status == 422, await resp.text()
        error = (await resp.json())["error"]
        assert error["code"] == code and message in (None, error["message"]), error
        assert [(d["field"], d["type"]) for d in error["details"]] == details, error


async def test_replacing_with_a_template_that_does_not_compile_is_422_naming_the_field(
    gw: Gateway, tenant_id: uuid.UUID
):
    auth = gw.auth(tenant_id)
    wid, _ = await create_webhook_workflow(gw, tenant_id)
    broken = slack_text("{{ payload.a|no_such_filter }}")
    replaced = await gw.client.put(f"/api/workflows/{wid}", json=broken, headers=auth)
    assert replaced.status == 422
    assert (await replaced.json())["error"]["details"][0]["field"] == "action.config.text"
    versions = (await (await gw.client.get(f"/api/workflows/{wid}/versions", headers=auth)).json())["data"]
    assert [v["version"] for v in versions] == [1]  # nothing was stored


async def test_a_dry_run_of_a_template_that_never_ends_is_422_within_seconds(
    gw: Gateway, tenant_id: uuid.UUID, executor: ExecutorFactory
):
    auth = gw.auth(tenant_id)
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
