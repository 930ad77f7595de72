"""Fuzzing ``/openapi.json`` with schemathesis: no 5xx, no answer outside the document, no operation missing.

The gateway and auth run in-process against the test's Postgres and NATS;
schemathesis loads the gateway's own ``/openapi.json`` and runs every phase
of ``schemathesis run`` (examples, coverage, fuzzing, stateful) with every
check on, a fixed seed, no shrinking and a bounded number of examples, with
a valid token.  Nothing is excluded; where the test departs from defaults it
says why:

- The dry-run responder is a stand-in for the executor: a real one would run
  each generated action against the generated URL, on the internet.  It
  answers every dry-run ``succeeded`` with the payload echoed (so the masked
  output goes through the answer's schema).  The executor's side of dry-runs
  is tested in ``test_executor_dry_run.py``.
- Logout and logout-all would revoke the token the rest of the run uses:
  they get a fresh token of a second user for each request.
- One client sending thousands of requests would spend the login,
  registration and bad-signature budgets in seconds and then only see 429
  (documented, and tested elsewhere): the budgets are raised.
- The document's examples (the tenant's own ids, a signed webhook, the
  user's credentials) are added to this test's copy, so the examples phase
  reaches the operations' success answers.
- Positive data on the operations that take a workflow definition may be
  refused with 422: cron expressions, time zones and templates are checked
  by croniter, zoneinfo and the template engine, rules a JSON Schema cannot
  state (the document states their shape: 5 or 6 cron fields, strings).
- ``ensure_resource_availability`` is off for the rollback only: after a
  ``POST /api/workflows``, the stateful phase follows the new id into
  ``/rollback`` with a generated ``version`` in the body (links fill path
  parameters, not bodies), and a version the workflow does not have is a 404
  ``version_not_found``, which the check reads as the workflow missing.  The
  check stays on for every other operation.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.specs.openapi.schemas import OpenApiSchema

from libs.common.bus import Bus
from libs.common.models.api import DRY_RUN_SUBJECT, DryRunCommand, DryRunResult
from services.gateway.hooks.signature import new_secret
from tests.helpers.auth_setup import PASSWORD, add_credential, bearer, register_and_login
from tests.helpers.factories import connection, insert_dead_letter, insert_execution
from tests.helpers.fuzz import FuzzReport, load, run_fuzz
from tests.helpers.gateway_app import SCHEDULE_WORKFLOW, WEBHOOK_WORKFLOW, auth_behind_gateway
from tests.helpers.webhooks import signed

log = logging.getLogger(__name__)

SEED = 20261202
MAX_EXAMPLES = 20
# Operations whose bodies hold a workflow definition: cron expressions, zones, templates (see the docstring).
DEFINITION_OPERATIONS = ["post_api_workflows", "put_api_workflows_id", "post_api_workflows_dry_run"]
LOGOUTS = "^/api/auth/logout"
GENEROUS = 1_000_000


@dataclass
class Stack:
    gateway: TestClient[web.Request, web.Application]
    base_url: str
    token: str
    second_user: dict[str, str]
    ids: dict[str, str]
    webhook_secret: str


async def _answer_dry_runs(msg: Any) -> None:
    command = DryRunCommand.model_validate_json(msg.data)
    reply = DryRunResult(status="succeeded", output={"echo": command.payload}, duration_ms=0)
    await msg.respond(reply.model_dump_json().encode())


@pytest.fixture
async def stack(database_url: str, nats_url: str, bus: Bus) -> AsyncIterator[Stack]:
    limits = {f"{name}_burst": GENEROUS for name in ("login_email", "login_ip", "register_ip")}
    await bus.nc.subscribe(DRY_RUN_SUBJECT, cb=_answer_dry_runs)
    await bus.nc.flush()  # the server has the subscription before the gateway asks
    async with auth_behind_gateway(database_url, nats_url, auth=limits, bad_signature_burst=GENEROUS) as edge:
        yield await _seed(edge.gateway, database_url)


async def _seed(gateway: TestClient[web.Request, web.Application], database_url: str) -> Stack:
    """A user with workflows, a credential, an execution and a dead letter: ids for the examples."""
    user = await register_and_login(gateway, "fuzz@example.com")
    second = {"email": "fuzz-logout@example.com", "password": PASSWORD}
    await register_and_login(gateway, second["email"])
    auth = bearer(user["token"])
    made = {}
    for name, body in (("webhook", WEBHOOK_WORKFLOW), ("schedule", SCHEDULE_WORKFLOW), ("doomed", WEBHOOK_WORKFLOW)):
        resp = await gateway.post("/api/workflows", json=body, headers=auth)
        assert resp.status == 201, await resp.text()
        made[name] = (await resp.json())["data"]
    ids = {name: data["id"] for name, data in made.items()}
    for name in ("credential", "doomed_credential"):
        resp = await add_credential(gateway, user, name, "openweather", {"api_key": "fuzz-key"})
        assert resp.status == 201, await resp.text()
        ids[name] = (await resp.json())["data"]["id"]
    ids.update(await _history(database_url, ids["webhook"]))
    return Stack(
        gateway=gateway,
        base_url=str(gateway.make_url("")).rstrip("/"),
        token=user["token"],
        second_user=second,
        ids=ids,
        webhook_secret=made["webhook"]["webhook"]["secret"],
    )


async def _history(database_url: str, workflow_id: str) -> dict[str, str]:
    """An execution and a replayable dead letter of the workflow, as the executor would have left them."""
    async with connection(database_url) as conn:
        wf = uuid.UUID(workflow_id)
        tenant_id = await conn.fetchval("SELECT tenant_id FROM workflows WHERE id = $1", wf)
        execution_id = await insert_execution(conn, tenant_id, wf, status="dead", output={"ok": False})
        await conn.execute("UPDATE executions SET attempts = 3, error = 'boom' WHERE id = $1", execution_id)
        event_id = await insert_dead_letter(conn, tenant_id, wf)
    return {"execution": str(execution_id), "dead_letter": str(event_id)}


def _with_examples(document: dict[str, Any], stack: Stack) -> dict[str, Any]:
    """This test's copy of the document, with the tenant's own ids and valid bodies as examples."""
    ids = stack.ids
    by_path = {
        "/api/workflows/{id}": {"id": ids["webhook"]},
        "/api/executions/{id}": {"id": ids["execution"]},
        "/api/dlq/{event_id}/replay": {"event_id": ids["dead_letter"]},
        "/hooks/{workflow_id}": {"workflow_id": ids["webhook"]},
        "/api/credentials/{credential_id}": {"credential_id": ids["doomed_credential"]},
    }
    for path, item in document["paths"].items():
        values = by_path.get(path) or by_path.get(path.rsplit("/", 1)[0], {})
        for method, operation in item.items():
            for param in operation.get("parameters", ()):
                if param["name"] in values:
                    param["example"] = values[param["name"]]
                if param["name"] == "workflow_id" and param["in"] == "query":
                    param["example"] = ids["webhook"]
                if path == "/api/workflows/{id}" and method == "delete" and param["name"] == "id":
                    param["example"] = ids["doomed"]  # deleted by its example; the others keep theirs
    bodies = {
        ("/api/workflows", "post"): WEBHOOK_WORKFLOW,
        ("/api/workflows/{id}", "put"): WEBHOOK_WORKFLOW,
        ("/api/workflows/dry-run", "post"): {"workflow": WEBHOOK_WORKFLOW, "payload": {"order_id": 7}},
        ("/api/workflows/{id}/rollback", "post"): {"version": 1},
        ("/api/auth/login", "post"): {"email": "fuzz@example.com", "password": PASSWORD},
        ("/api/credentials", "post"): {"name": "n", "type": "http", "secret": {"headers": {"X-Key": "v"}}},
        # A generated secret is refused (409) by a Standard Webhooks workflow: only a whsec_ one is set.
        ("/api/workflows/{id}/webhook-secret", "post"): {"secret": new_secret()},
    }
    for (path, method), body in bodies.items():
        document["paths"][path][method]["requestBody"]["content"]["application/json"]["example"] = body
    _signed_webhook_example(document["paths"]["/hooks/{workflow_id}"]["post"], stack.webhook_secret)
    return document


def _signed_webhook_example(operation: dict[str, Any], secret: str) -> None:
    body = "ping"
    values = signed(secret, body, msg_id="msg_fuzz_example")
    for param in operation["parameters"]:
        if param["name"] in values:
            param["example"] = values[param["name"]]
    operation["requestBody"]["content"]["text/plain"]["example"] = body


def _config(stack: Stack) -> dict[str, Any]:
    positive_422 = {
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
        }
    }
    return {
        "seed": SEED,
        "base-url": stack.base_url,
        "generation": {"max-examples": MAX_EXAMPLES, "no-shrink": True, "deterministic": True, "database": "none"},
        "operations": [
            {"include-operation-id": DEFINITION_OPERATIONS, "checks": positive_422},
            {
                "include-operation-id": ["post_api_workflows_id_rollback"],
                "checks": {"ensure_resource_availability": {"enabled": False}},
            },
        ],
    }


def _auth(stack: Stack) -> Any:
    def setup(schema: OpenApiSchema) -> None:
        class Bearer:
            def set(self, case: Any, data: str, ctx: Any) -> None:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

        @schema.auth(refresh_interval=None).apply_to(path_regex=LOGOUTS)
        class FreshToken(Bearer):
            def get(self, case: Any, ctx: Any) -> str:
                resp = requests.post(f"{stack.base_url}/api/auth/login", json=stack.second_user, timeout=30)
                assert resp.status_code == 200, resp.text
                return str(resp.json()["data"]["access_token"])

        @schema.auth().skip_for(path_regex=LOGOUTS)
        class UserToken(Bearer):
            def get(self, case: Any, ctx: Any) -> str:
                return stack.token

    return setup


@pytest.fixture
def hypothesis_home(tmp_path: Path) -> Iterator[None]:
    """Hypothesis' caches go to the test's directory, not to ``.hypothesis`` in the working tree."""
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    yield
    set_hypothesis_home_dir(None)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_schemathesis_finds_nothing(stack: Stack, hypothesis_home: None) -> None:
    document = await (await stack.gateway.get("/openapi.json")).json()
    schema = load(_with_examples(document, stack), _config(stack), _auth(stack))
    report: FuzzReport = await asyncio.to_thread(run_fuzz, schema)
    log.info("schemathesis run", extra={"summary": report.summary()})
    assert report.errors == [], report.summary()
    assert report.findings == [], report.summary()
    server_errors = {op: sorted(s for s in statuses if s >= 500) for op, statuses in report.statuses.items()}
    assert not any(server_errors.values()), server_errors
    # Every operation in the document is served: each answered at least once with success.
    documented = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    missing = sorted(op for op in documented if not any(200 <= s < 300 for s in report.statuses.get(op, {})))
    assert missing == [], {op: dict(report.statuses.get(op, {})) for op in missing}
