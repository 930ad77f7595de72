"""SIGTERM while an event's claim is still being written: the lease that claim takes is given up, not kept.

The claim statement waits on a row lock the test holds on the workflow, so the
grace ends (and the work is cancelled) before the claim commits.  The replica
waits for the claim to land and releases its lease before it NAKs the message:
another replica runs the event at once, not after the 60 s lease.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import asyncpg
import pytest

from libs.common.bus import Bus
from tests.helpers.factories import connection, create_tenant, create_workflow
from tests.helpers.fakes import FakeSink, executor_env, final_row, publish_event
from tests.helpers.ledger import http_workflow
from tests.helpers.wait import wait_until

LONG = {"IPAAS_EXECUTOR_ACK_WAIT_SECONDS": "60", "IPAAS_EXECUTOR_LEASE_SECONDS": "60"}
CLAIM_WAITING = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO executions%'
"""


@pytest.mark.slow
async def test_a_claim_that_commits_after_the_grace_gives_its_lease_up(
    bus: Bus, db: asyncpg.Connection, nats_url: str, database_url: str, service: Any, sink: FakeSink
) -> None:
    async with connection(database_url) as locker:
        tenant = await create_tenant(db)
        workflow = await create_workflow(db, tenant, http_workflow(f"{sink.url}/claim"))
        victim = service(
            "services.executor", env=executor_env(nats_url, database_url, IPAAS_EXECUTOR_GRACE_SECONDS="0.5", **LONG)
        )
        lock = locker.transaction()
        await lock.start()
        await locker.execute("SELECT 1 FROM workflows WHERE id = $1 FOR UPDATE", workflow)
        event = await publish_event(bus, tenant, workflow, {"n": 1})
        await wait_until(lambda: db.fetchval(CLAIM_WAITING), timeout=10, message="the claim waiting on the lock")

        victim.proc.send_signal(signal.SIGTERM)
        await wait_until(
            lambda: "grace over: cancelling work in flight" in victim.logs(),
            timeout=10,
            message="the grace to end with the claim under way",
        )
        await lock.commit()  # the claim commits now, after the work that made it was cancelled
        assert await asyncio.to_thread(victim.proc.wait, 15) == 0

        row = await db.fetchrow(
            "SELECT status, attempts, lease_owner FROM executions WHERE event_id = $1", event.event_id
        )
        assert row is not None and row["status"] == "running" and row["attempts"] == 1
        assert row["lease_owner"] is None, "the claim's lease was left to expire"
        assert sink.calls == 0
        service("services.executor", env=executor_env(nats_url, database_url, **LONG))
        done = await final_row(db, event.event_id, timeout=10)  # one run: the lease had 60 s to go
        assert done["status"] == "succeeded" and done["attempts"] == 2
        assert sink.calls == 1
