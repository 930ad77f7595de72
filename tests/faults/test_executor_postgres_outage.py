"""Postgres goes away under the executor: events wait (released, not lost) and all run once it is back."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.helpers.factories import connection, fetchval_once
from tests.helpers.fakes import executor_env, publish_many, slack_workflow, webhook_envelopes
from tests.helpers.wait import wait_until

EVENTS = 50


async def test_events_published_during_a_postgres_outage_all_run_after_it(
    bus: Any, nats_url: str, private_pg: Any, service: Any, sink: Any, creds: Any
) -> None:
    dsn = private_pg.dsn("ipaas")
    async with connection(dsn) as conn:
        tenant, wf = await slack_workflow(conn, creds, sink.url, "{{ payload.i }}")
    ex = service(
        "services.executor",
        env=executor_env(
            nats_url, dsn, IPAAS_DB_COMMAND_TIMEOUT_SECONDS="2", IPAAS_EXECUTOR_WORKFLOW_STATE_TTL_SECONDS="0"
        ),
    )

    await asyncio.to_thread(private_pg.kill)
    await publish_many(bus, webhook_envelopes(tenant, wf, EVENTS))
    await wait_until(lambda: "storage unavailable" in ex.logs(), timeout=15, message="the executor noticed")
    assert sink.calls == 0
    await asyncio.to_thread(private_pg.start)

    async def all_done() -> bool:
        try:
            return bool(
                await fetchval_once(dsn, "SELECT count(*) FROM executions WHERE status = 'succeeded'") == EVENTS
            )
        except (OSError, asyncpg.PostgresError):  # still starting up
            return False

    await wait_until(all_done, timeout=60, interval=0.25, message="every event after the outage")
    assert ex.alive()
    assert sorted(int(r.json()["text"]) for r in sink.requests) == list(range(EVENTS))
