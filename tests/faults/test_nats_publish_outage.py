"""``nats_publish`` while NATS is away: the try fails as transient, and once NATS is back the event runs once.

The executor holds an event when NATS goes away: the test keeps it from reaching
the action (a lock on ``workflow_versions`` delays the definition's load) until
the server is stopped, then lets it go. The publish finds no connection, the
try is recorded as failed, and the event is retried after the server is back.
A JetStream stream on ``out.>`` (created by the test, which core publishes on
those subjects land in) is the witness: exactly one message, with the event's
``Idempotency-Key``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import pytest
from nats.js.api import StreamConfig

from deploy.local.infra import NatsServer
from libs.common.bus import Bus
from libs.common.settings import NatsSettings
from services.executor.connectors.nats_publish import outbound_subject
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import definition, executor_env, final_row, publish_event
from tests.helpers.services import ServiceProcess
from tests.helpers.wait import consumer_idle, wait_until

WITNESS = "OUTBOUND_WITNESS"
# Someone waiting for a lock on workflow_versions (the executor loading the definition).
_WAITING = """
SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'workflow_versions'::regclass
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_nats_publish_while_nats_is_away_is_retried_and_runs_once(
    db: asyncpg.Connection, database_url: str, private_nats: NatsServer, service: Callable[..., ServiceProcess]
) -> None:
    settings = NatsSettings(NATS_URL=private_nats.url)
    bus = await Bus.connect(settings, name="test", connect_deadline_seconds=10)
    await bus.ensure_streams()
    await bus.js.add_stream(StreamConfig(name=WITNESS, subjects=["out.>"]))
    tenant = await create_tenant(db)
    wf = await create_workflow(
        db, tenant, definition("nats_publish", {"subject": "orders.paid", "payload": {"n": "{{ payload.n }}"}})
    )
    subject = outbound_subject(str(tenant), "orders.paid")
    service(
        "services.executor",
        env=executor_env(private_nats.url, database_url, IPAAS_EXECUTOR_ACK_WAIT_SECONDS="3"),
    )
    blocker = await asyncpg.connect(database_url)
    try:
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE workflow_versions IN ACCESS EXCLUSIVE MODE")
        event = await publish_event(bus, tenant, wf, {"n": 7})
        await wait_until(
            lambda: db.fetchval(_WAITING), timeout=30, message="the executor to hold the event, waiting on the lock"
        )
        await bus.drain()
        await asyncio.to_thread(private_nats.stop)
        await lock.rollback()

        first = await wait_until(
            lambda: db.fetchrow(
                "SELECT outcome, error FROM execution_attempts WHERE event_id = $1 ORDER BY id LIMIT 1", event.event_id
            ),
            timeout=30,
            message="the try made while NATS is away",
        )
        assert first["outcome"] == "failed" and "nats_publish" in first["error"], dict(first)
        execution = await db.fetchrow("SELECT status FROM executions WHERE event_id = $1", event.event_id)
        assert execution is not None and execution["status"] not in ("succeeded", "dead")

        await asyncio.to_thread(private_nats.start)
        row = await final_row(db, event.event_id, timeout=90)
        assert row["status"] == "succeeded" and row["attempts"] >= 2, dict(row)

        bus = await Bus.connect(settings, name="test", connect_deadline_seconds=10)
        info = await bus.js.stream_info(WITNESS, subjects_filter=subject)
        assert info.state.messages == 1, info.state
        msg = await bus.js.get_last_msg(WITNESS, subject)
        assert msg.headers is not None and msg.headers["Idempotency-Key"] == str(event.event_id)
        assert msg.data == b'{"n":7}'

        # Settled (nothing parked, nothing pending or unacked on EVENTS): no second copy came from a
        # redelivery of the held message or a woken parked one.
        async def settled() -> bool:
            return not await db.fetchval("SELECT count(*) FROM deferred_events") and await consumer_idle(bus)

        await wait_until(settled, timeout=60, message="nothing parked or pending")
        assert (await bus.js.stream_info(WITNESS)).state.messages == 1
    finally:
        await blocker.close()
        with contextlib.suppress(Exception):
            await bus.drain()
