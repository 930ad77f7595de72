"""Ingest: signed webhooks through the gateway vs a bare aiohttp handler that only publishes.

Both servers run as processes against the same private JetStream, and the same
load generator sends both the same signed requests in alternating rounds, so
noise hits both alike.  Each server's best round counts.
Targets: gateway throughput >= 0.6x the bare handler, gateway p99 <= 20 ms
(the median of its rounds), and no per-request database work: the gateway's
database sees far fewer transactions than it accepted webhooks (only the
outbox poll and cache refreshes, counted from ``pg_stat_database``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Callable

import asyncpg
import nats

from deploy.local.infra import NatsServer, free_port
from services.gateway.hooks.signature import new_secret
from tests.bench.harness import free_cpu_note, report, run_loadgen
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.services import ServiceProcess

DURATION = float(os.environ.get("BENCH_DURATION", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))

WEBHOOK_WORKFLOW = {
    "name": "bench",
    "trigger": {"type": "webhook"},
    "action": {"type": "http_request", "config": {"method": "POST", "url": "https://example.com/hook"}},
}


async def _transactions(database_url: str) -> int:
    """Committed plus rolled-back transactions of this database so far (flushed statistics)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        return int(await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"))
    finally:
        await conn.close()


async def _drop_streams(nats_url: str) -> None:
    """Leave no ~100k-message streams behind for the next bench to delete while it measures."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for name in ("BASELINE", "EVENTS"):
            with contextlib.suppress(Exception):
                await js.delete_stream(name)
    finally:
        await nc.close()


async def _workflow(database_url: str, secret: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        tenant = await create_tenant(conn)
        wf = await create_workflow(conn, tenant, WEBHOOK_WORKFLOW, webhook_secret=secret)
    finally:
        await conn.close()
    return str(wf)


def test_ingest_vs_bare_publish(database_url: str, nats_server: NatsServer,
                                service: Callable[..., ServiceProcess]) -> None:
    secret = new_secret()
    workflow_id = asyncio.run(_workflow(database_url, secret))
    env = {"NATS_URL": nats_server.url, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
           "IPAAS_GATEWAY_WEBHOOK_RATE_PER_SECOND": "1000000000", "IPAAS_GATEWAY_WEBHOOK_BURST": "1000000000"}
    gateway = service("services.gateway", env=env)
    baseline = service("tests.bench.baseline_server", env={}, port=(port := free_port()),
                       args=("--port", str(port), "--nats", nats_server.url))

    rows = []
    transactions_before = asyncio.run(_transactions(database_url))
    for round_no in range(ROUNDS):
        for name, svc in (("bare publish", baseline), ("gateway", gateway)):
            # The same signed requests to both: the bare handler just ignores the signature headers.
            result = run_loadgen(f"{svc.url}/hooks/{workflow_id}", secret=secret, duration=DURATION,
                                 concurrency=CONCURRENCY)
            assert result["statuses"].get("202", 0) == result["requests"], result
            rows.append({"round": round_no, "server": name, **{k: result[k] for k in
                                                               ("rps", "p50_ms", "p99_ms", "requests")}})

    # Other backends flush their statistics within about a second of going idle.
    time.sleep(1.5)
    db_transactions = asyncio.run(_transactions(database_url)) - transactions_before
    accepted = sum(int(r["requests"]) for r in rows if r["server"] == "gateway")
    gateway.terminate()
    baseline.terminate()
    asyncio.run(_drop_streams(nats_server.url))

    def best(server: str, key: str) -> float:
        return max(float(r[key]) for r in rows if r["server"] == server)

    ratio = best("gateway", "rps") / best("bare publish", "rps")
    gateway_p99 = statistics.median(float(r["p99_ms"]) for r in rows if r["server"] == "gateway")
    rows.append({"server": "ratio gateway/bare", "rps": round(ratio, 3), "note": free_cpu_note()})
    rows.append({"server": "gateway DB transactions", "requests": accepted, "note": db_transactions})
    verdicts = {"gateway >= 0.6x bare publish": ratio >= 0.6,
                "gateway p99 <= 20 ms (median round)": gateway_p99 <= 20.0,
                "no per-request DB query (transactions < 1% of webhooks)": db_transactions < accepted / 100}
    report("ingest", rows, verdicts)
    assert all(verdicts.values()), verdicts
