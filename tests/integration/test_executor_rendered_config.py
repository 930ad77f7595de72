"""What an event renders to can fail that event permanently, and only that one.

A template that never ends: its event is dead with the reason, and another tenant's event is not held up.

A rendered config its connector's model does not take: the models take every config a saved definition can
render to, so the executor is run here with a stricter ``http_request`` model (a header must be digits): the
event whose header renders to a word ends ``dead`` after one try, its error naming the field, and the next
event is sent as usual.
"""

from __future__ import annotations

import time
from typing import Annotated

import asyncpg
import pytest
from pydantic import Field

from libs.common.bus import Bus
from services.executor.connectors.configs import RENDERED_CONFIGS, HttpRequest
from tests.helpers.executor_app import ExecutorFactory
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import FakeSink, definition, final_row, publish_event, slack_workflow
from tests.helpers.wait import wait_until


class DigitsOnlyHeaders(HttpRequest):
    headers: dict[str, Annotated[str, Field(pattern=r"^\d+$")]] = Field(default_factory=dict)


async def test_a_config_that_does_not_fit_fails_its_event_permanently_and_no_other(
    bus: Bus, db: asyncpg.Connection, sink: FakeSink, executor: ExecutorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(RENDERED_CONFIGS, "http_request", DigitsOnlyHeaders)
    tenant = await create_tenant(db)
    config = {"url": f"{sink.url}/orders", "headers": {"X-Count": "{{ payload.n }}"}, "body": {"n": "{{ payload.n }}"}}
    wf = await create_workflow(db, tenant, definition("http_request", config))
    await executor()
    bad = await publish_event(bus, tenant, wf, {"n": "many"})
    good = await publish_event(bus, tenant, wf, {"n": 3})
    bad_row, good_row = await final_row(db, bad.event_id), await final_row(db, good.event_id)
    assert (bad_row["status"], bad_row["attempts"]) == ("dead", 1)
    assert bad_row["error"] == ("invalid config in action.config.headers.X-Count: String should match pattern '^\\d+$'")
    assert good_row["status"] == "succeeded", good_row["error"]
    assert [(r.headers["X-Count"], r.json()) for r in sink.paths("/orders")] == [("3", {"n": 3})]


NESTED_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
REASON = "template error in action.config.text: template took longer than 100 ms"


async def test_a_template_that_never_ends_is_dead_and_another_tenant_runs_promptly(bus, db, sink, creds, executor):
    hostile_tenant, hostile_wf = await slack_workflow(db, creds, sink.url, NESTED_LOOPS)
    good_tenant, good_wf = await slack_workflow(db, creds, sink.url, "order {{ payload.n }} for {{ payload.who }}")
    # Only the clock may stop the hostile template: on a busy machine the step limit could be reached first.
    await executor(IPAAS_EXECUTOR_TEMPLATE_MAX_ITERATIONS=str(10**12))

    hostile = [await publish_event(bus, hostile_tenant, hostile_wf, {"n": i}) for i in range(3)]
    published = time.monotonic()
    good = await publish_event(bus, good_tenant, good_wf, {"n": 1, "who": "Ada"})

    await wait_until(lambda: sink.calls >= 1, timeout=15, message="the good tenant's message")
    # Three hostile renders of 100 ms each may come first; without the limit they would take hours.
    assert sink.requests[0].at - published < 3.0
    assert sink.requests[0].json() == {"text": "order 1 for Ada"}
    assert (await final_row(db, good.event_id))["status"] == "succeeded"

    for event in hostile:
        row = await final_row(db, event.event_id)
        assert row["status"] == "dead" and row["attempts"] == 1  # permanent: never retried
        assert row["error"] == REASON
        letter = await db.fetchrow("SELECT reason FROM dead_letters WHERE event_id = $1", event.event_id)
        assert letter is not None and letter["reason"] == REASON
    assert sink.calls == 1
