"""A template that never ends: its event is dead with the reason, and another tenant's event is not held up."""

from __future__ import annotations

import time

from tests.helpers.fakes import final_row, publish_event, slack_workflow
from tests.helpers.wait import wait_until

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
