"""Acceptance 8: one tenant's storm cannot starve another tenant."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import Answer, definition, publish_many, webhook_envelopes
from tests.helpers.wait import equals, wait_until

A_EVENTS = 5000
B_EVENTS = 10


async def test_small_tenant_finishes_before_half_of_the_storm(bus, db, stack, sink, creds):
    sink.behaviour = lambda _r, _n: Answer(200, "ok", delay=0.01)
    ta, tb = await create_tenant(db, "storm"), await create_tenant(db, "small")
    ca = creds.add(ta, "slack", {"webhook_url": f"{sink.url}/a/services/T/B/X"})
    cb = creds.add(tb, "slack", {"webhook_url": f"{sink.url}/b/services/T/B/X"})
    wa = await create_workflow(db, ta, definition("slack_message", {"text": "a"}, ca))
    wb = await create_workflow(db, tb, definition("slack_message", {"text": "b"}, cb))
    # The storm is queued first, B's events behind all of it.
    await publish_many(bus, webhook_envelopes(ta, wa, A_EVENTS, prefix="a"), concurrency=256)
    await publish_many(bus, webhook_envelopes(tb, wb, B_EVENTS, prefix="b"))
    stack.start_executor(IPAAS_EXECUTOR_MAX_IN_FLIGHT="32", IPAAS_EXECUTOR_TENANT_SHARE="0.5")
    started = time.monotonic()

    def succeeded(tenant: uuid.UUID) -> Any:
        return db.fetchval("SELECT count(*) FROM executions WHERE tenant_id = $1 AND status = 'succeeded'", tenant)

    await wait_until(lambda: equals(succeeded(tb), B_EVENTS), timeout=60, interval=0.05, message="tenant B's events")
    a_done = await succeeded(ta)
    assert a_done < A_EVENTS / 2, f"B finished only after {a_done} of A's events"
    assert time.monotonic() - started < 60
