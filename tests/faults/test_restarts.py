"""NATS and Postgres restarted under a webhook burst, with the whole path running (scenarios 9 and 10).

The ledger holds after each: every 202 is exactly one final execution row, no
row without a 202, nothing left in the consumer or parked, and no action ran
twice.  While a server is down ingest answers 503 with ``Retry-After`` (never
500), and everything resumes without restarting a service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from deploy.local.infra import NatsServer, PostgresServer, free_port
from libs.common.bus import Bus
from libs.common.db.migrate import apply_migrations
from tests.helpers.fakes import FakeSink
from tests.helpers.ledger import Ledger, burst_with_outage, fault_stack, http_workflow, stop_immediately
from tests.helpers.pg_roles import create_database
from tests.helpers.services import ServiceProcess
from tests.helpers.wait import wait_until


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_nats_killed_and_restarted_mid_burst(
    db, database_url, private_nats: NatsServer, private_bus: Bus, service, sink
):
    await private_bus.ensure_streams()
    async with fault_stack(service, db, private_nats.url, database_url) as stack:
        stack.start_gateway(IPAAS_GATEWAY_PUBLISH_TIMEOUT_SECONDS="1")
        for _ in range(2):
            stack.start_executor()
        tenant = await stack.tenant(http_workflow(f"{sink.url}/n"))
        ledger = Ledger()
        # From the kill to the restart's start: no server, so every answer must be a 503.  (The end
        # is taken before start(), which returns once the server is back and already storing.)
        down_at: list[float] = []
        back: list[float] = []

        def outage() -> None:
            private_nats.kill()  # kill -9
            down_at.append(time.monotonic())
            time.sleep(3)
            down_at.append(time.monotonic())
            private_nats.start()
            back.append(time.monotonic())

        async def burst() -> None:
            # At least 3,000 webhooks, and on until the server is back: a fast machine would
            # otherwise finish the burst before the outage it is meant to meet.
            await stack.send(ledger, tenant, 3000, concurrency=16)
            while not back:
                await stack.send(ledger, tenant, 100, concurrency=16)

        await burst_with_outage(burst, ledger, 800, outage)
        statuses = ledger.statuses()
        assert set(statuses) <= {202, 503}, statuses
        assert statuses[503] > 0 and not ledger.refused_without_retry_after()
        during = [a for a in ledger.answers if down_at[0] + 0.5 < a.answered_at < down_at[1]]
        assert during and all(a.status == 503 for a in during)
        # Ingest comes back without a service restart (JetStream recovers its streams after the kill first).
        probe = Ledger()

        async def ingest_back() -> bool:
            await stack.send(probe, tenant, 1, concurrency=1)
            return probe.answers[-1].status == 202

        await wait_until(ingest_back, timeout=30, interval=0.5, message="ingest accepting again after the restart")
        ledger.answers += probe.answers
        # Consumers resume without a service restart: the burst's events and new ones all run.
        await stack.send_accepted(ledger, tenant, 50, concurrency=8)
        await stack.every_event_once(ledger, tenant, private_bus, sink, timeout=120)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_postgres_stopped_immediately_and_restarted_mid_run(
    bus, nats_url, tmp_path: Path, service: Callable[..., ServiceProcess], sink: FakeSink
):
    # Durable settings (fsync, synchronous commit): a commit the executor saw must survive the crash.
    pg = PostgresServer(tmp_path / "pg", free_port(), durable=True)
    pg.start()
    try:
        create_database(pg, "ipaas")
        dsn = pg.dsn("ipaas")
        await apply_migrations(dsn)
        db = await asyncpg.connect(dsn)
        async with fault_stack(service, db, nats_url, dsn) as stack:
            stack.start_gateway()
            for _ in range(2):
                stack.start_executor(IPAAS_DB_COMMAND_TIMEOUT_SECONDS="3")
            tenant = await stack.tenant(http_workflow(f"{sink.url}/p"))
            ledger = Ledger()
            await stack.send(ledger, tenant, 20)  # the gateway has the workflow cached now
            times: list[float] = []

            def outage() -> None:
                stop_immediately(pg)
                times.append(time.monotonic())
                time.sleep(3)
                pg.start()
                times.append(time.monotonic())

            await db.close()
            await burst_with_outage(lambda: stack.send(ledger, tenant, 2000, concurrency=16), ledger, 500, outage)
            stack.db = db = await asyncpg.connect(dsn)
            statuses = ledger.statuses()
            assert set(statuses) <= {202, 503}, statuses  # never a 500
            assert not ledger.refused_without_retry_after()

            since_restart = "SELECT count(*) FROM executions WHERE finished_at > now() - make_interval(secs => $1)"
            await wait_until(
                lambda: db.fetchval(since_restart, time.monotonic() - times[1] + 0.5),
                timeout=30,
                message="new rows within 30 s of the restart",
            )
            await ledger.settle(db, bus, timeout=150)
            figures = await ledger.check(db, bus, [tenant.workflow_id], sink)
            odd = await db.fetch(
                "SELECT status, attempts, error FROM executions WHERE workflow_id = $1 AND status <> 'succeeded'",
                tenant.workflow_id,
            )
            assert figures["rows"] == {"succeeded": len(ledger.accepted)}, [dict(r) for r in odd]
            assert figures["extra_receipts"] == 0  # no action ran twice
            await db.close()
    finally:
        pg.kill()
