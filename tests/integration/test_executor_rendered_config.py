"""A rendered config its connector's model does not take fails that event permanently, and only that one.

The models take every config a saved definition can render to, so the executor is run here with a
stricter ``http_request`` model (a header must be digits): the event whose header renders to a word
ends ``dead`` after one try, its error naming the field, and the next event is sent as usual.
"""

from __future__ import annotations

from typing import Annotated

import asyncpg
import pytest
from pydantic import Field

from libs.common.bus import Bus
from services.executor.connectors.configs import RENDERED_CONFIGS, HttpRequest
from tests.helpers.executor_app import ExecutorFactory
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import FakeSink, definition, final_row, publish_event


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
