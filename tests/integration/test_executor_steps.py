"""Multi-step workflows through the running executor: outputs flow, checkpoints, filters, per-step keys.

Step 2 fails twice then succeeds: step 1's target is called once, step 3's once, and each call
carries ``Idempotency-Key: <event_id>:<step_id>``.  A false filter ends the execution ``filtered``
and no later step runs.  ``continue_on_error`` lets a dead step be passed over.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest

from libs.common.models.events import event_id_for
from tests.helpers.executor_app import ExecutorFactory
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import Answer, Seen, final_row, http_step, publish_event, steps_workflow


@pytest.fixture
def run_steps(bus: Any, db: Any, executor: ExecutorFactory) -> Any:
    """``await run_steps(steps, payload={}, **env)``: a new tenant's workflow of ``steps``, the executor
    (``executor_env`` with ``env``), one event of ``payload``; returns the event and its final row."""

    async def run(steps: list[dict[str, Any]], payload: Any = None, **env: str) -> tuple[Any, Any]:
        tenant = await create_tenant(db)
        wf = await create_workflow(db, tenant, steps_workflow(steps))
        await executor(**env)
        event = await publish_event(bus, tenant, wf, payload if payload is not None else {})
        return event, await final_row(db, event.event_id, timeout=30.0)

    return run


async def checkpoints(db: Any, event_id: uuid.UUID) -> dict[str, Any]:
    rows = await db.fetch(
        "SELECT step_id, status, attempts, continued, output, error FROM execution_steps "
        "WHERE event_id = $1 ORDER BY position",
        event_id,
    )
    return {r["step_id"]: r for r in rows}


def lookup_answers(customer: dict[str, Any]) -> Any:
    """/lookup answers the customer; /flaky fails twice, then answers; everything else says ok."""
    flaky = {"n": 0}

    def behaviour(req: Seen, _n: int) -> Answer:
        if req.path == "/lookup":
            return Answer(200, json.dumps({"data": customer}))
        if req.path == "/flaky":
            flaky["n"] += 1
            return Answer(503, "down") if flaky["n"] <= 2 else Answer(200, json.dumps({"ok": flaky["n"]}))
        return Answer(200, json.dumps({"received": True}))

    return behaviour


async def test_a_failing_middle_step_resumes_there_and_earlier_steps_never_run_again(db, run_steps, sink):
    sink.behaviour = lookup_answers({"id": "C-1", "name": "Ada", "vip": True})
    event, row = await run_steps(
        [
            http_step(
                "lookup",
                f"{sink.url}/lookup",
                {"order": "{{ payload.order }}"},
                config={"response": {"name": "data.name", "vip": "data.vip"}},
            ),
            http_step("flaky", f"{sink.url}/flaky", {"who": "{{ steps.lookup.output.data.name }}"}),
            http_step(
                "notify",
                f"{sink.url}/notify",
                {
                    "name": "{{ steps.lookup.output.data.name }}",
                    "vip": "{{ steps.lookup.output.data.vip }}",
                    "flaky_status": "{{ steps.flaky.status }}",
                    "via": "{{ trigger.type }}",
                },
            ),
        ],
        {"order": 42},
    )
    assert row["status"] == "succeeded", row["error"]
    assert row["attempts"] == 3  # one try failed at step 2 twice, the third went through
    assert Counter(r.path for r in sink.requests) == {"/lookup": 1, "/flaky": 3, "/notify": 1}
    assert sink.paths("/lookup")[0].json() == {"order": 42}
    assert sink.paths("/flaky")[0].json() == {"who": "Ada"}
    assert sink.paths("/notify")[0].json() == {
        "name": "Ada",
        "vip": True,
        "flaky_status": "succeeded",
        "via": "webhook",
    }
    keys = {r.path: r.headers["Idempotency-Key"] for r in sink.requests}
    assert keys == {
        "/lookup": f"{event.event_id}:lookup",
        "/flaky": f"{event.event_id}:flaky",
        "/notify": f"{event.event_id}:notify",
    }
    steps = await checkpoints(db, event.event_id)
    assert [(s, r["status"], r["attempts"]) for s, r in steps.items()] == [
        ("lookup", "succeeded", 1),
        ("flaky", "succeeded", 3),
        ("notify", "succeeded", 1),
    ]
    assert json.loads(steps["lookup"]["output"])["data"] == {"name": "Ada", "vip": True}


async def test_a_false_filter_ends_the_execution_filtered_and_runs_no_later_step(db, run_steps, sink):
    sink.behaviour = lookup_answers({"id": "C-2", "name": "Bob", "vip": False})
    small, row = await run_steps(
        [
            http_step("lookup", f"{sink.url}/lookup", config={"response": {"vip": "data.vip"}}),
            {
                "id": "only_vips",
                "filter": {"condition": "steps.lookup.output.data.vip and payload.amount > 100"},
            },
            http_step("notify", f"{sink.url}/notify", {"amount": "{{ payload.amount }}"}),
        ],
        {"amount": 500},
    )
    assert row["status"] == "filtered", row["error"]
    assert row["error"] is None
    assert sink.paths("/notify") == []
    steps = await checkpoints(db, small.event_id)
    assert [(s, r["status"]) for s, r in steps.items()] == [("lookup", "succeeded"), ("only_vips", "filtered")]
    assert json.loads(steps["only_vips"]["output"]) == {"passed": False}
    tries = await db.fetch("SELECT outcome FROM execution_attempts WHERE event_id = $1", small.event_id)
    assert [t["outcome"] for t in tries] == ["filtered"]


async def test_continue_on_error_passes_a_dead_step_over(db, run_steps, sink):
    sink.behaviour = lambda req, _n: Answer(400, "no") if req.path == "/broken" else Answer(200, "{}")
    event, row = await run_steps(
        [
            http_step("broken", f"{sink.url}/broken", continue_on_error=True),
            http_step("after", f"{sink.url}/after", {"before": "{{ steps.broken.status }}"}),
        ],
    )
    assert row["status"] == "succeeded", row["error"]
    assert sink.paths("/after")[0].json() == {"before": "failed"}
    steps = await checkpoints(db, event.event_id)
    assert steps["broken"]["status"] == "failed" and steps["broken"]["continued"] is True
    assert "400" in steps["broken"]["error"]


async def test_a_step_that_gives_up_kills_the_execution_at_its_own_retry_policy(db, run_steps, sink):
    sink.behaviour = lambda req, _n: Answer(503, "down") if req.path == "/down" else Answer(200, "{}")
    event, row = await run_steps(
        [
            http_step("first", f"{sink.url}/first"),
            http_step("down", f"{sink.url}/down", retry={"max_attempts": 2}),
            http_step("never", f"{sink.url}/never"),
        ],
    )
    assert row["status"] == "dead"
    assert row["error"].startswith("step down:")
    assert len(sink.paths("/first")) == 1 and len(sink.paths("/down")) == 2 and sink.paths("/never") == []
    steps = await checkpoints(db, event.event_id)
    assert [(s, r["status"], r["attempts"]) for s, r in steps.items()] == [
        ("first", "succeeded", 1),
        ("down", "dead", 2),
    ]
    assert await db.fetchval("SELECT count(*) FROM dead_letters WHERE event_id = $1", event.event_id) == 1


async def test_a_steps_own_timeout_bounds_its_call(run_steps, sink):
    sink.behaviour = lambda req, _n: Answer(200, "{}", delay=3.0 if req.path == "/slow" else 0.0)
    event, row = await run_steps(
        [
            http_step("slow", f"{sink.url}/slow", timeout_seconds=0.5, retry={"max_attempts": 1}),
            http_step("next", f"{sink.url}/next"),
        ],
    )
    assert row["status"] == "dead"
    assert "timed out after 0.5s" in row["error"], row["error"]
    assert sink.paths("/next") == []


async def test_a_steps_kept_output_is_capped_by_its_setting(db, run_steps, sink):
    big = json.dumps({"items": ["x" * 100] * 20})  # about 2 KB
    sink.behaviour = lambda req, _n: Answer(200, big if req.path == "/big" else "{}")
    event, row = await run_steps(
        [
            http_step("big", f"{sink.url}/big"),
            http_step("after", f"{sink.url}/after", {"cut": "{{ steps.big.output.truncated }}"}),
        ],
        IPAAS_EXECUTOR_STEP_OUTPUT_MAX_BYTES="512",
    )
    assert row["status"] == "succeeded", row["error"]
    kept = json.loads((await checkpoints(db, event.event_id))["big"]["output"])
    assert kept["truncated"] is True and len(kept["preview"]) <= 512
    assert sink.paths("/after")[0].json() == {"cut": True}  # later steps read what was kept


async def test_a_step_that_gave_up_is_not_called_again_when_the_finish_was_lost(bus, db, executor, sink, tenant_id):
    # A crash between a step's `dead` checkpoint and the execution's finish: the row is still `running`
    # under a lease that ran out.  The redelivery finishes the execution dead without calling anything.
    wf = await create_workflow(
        db, tenant_id, steps_workflow([http_step("first", f"{sink.url}/first"), http_step("second", f"{sink.url}/2")])
    )
    key = uuid.uuid4().hex
    event_id = event_id_for(wf, key)
    await db.execute(
        """INSERT INTO executions (id, event_id, tenant_id, workflow_id, workflow_version, trigger, status,
                                   attempts, started_at, lease_owner, lease_until)
           VALUES (gen_random_uuid(), $1, $2, $3, 1, 'webhook', 'running',
                   1, now(), 'gone', now() - interval '1 s')""",
        event_id,
        tenant_id,
        wf,
    )
    await db.execute(
        """INSERT INTO execution_steps (event_id, step_id, position, status, attempts, error, output)
           VALUES ($1, 'first', 0, 'succeeded', 1, NULL, '{}'),
                  ($1, 'second', 1, 'dead', 1, 'step second: 400', NULL)""",
        event_id,
    )
    await executor()
    await publish_event(bus, tenant_id, wf, {}, dedup_key=key)
    row = await final_row(db, event_id, timeout=30.0)
    assert row["status"] == "dead" and row["error"] == "step second: 400"
    assert sink.calls == 0
