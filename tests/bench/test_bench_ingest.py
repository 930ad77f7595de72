"""Ingest: signed webhooks through the gateway vs a bare aiohttp handler that only publishes.

Both servers run as processes against the same private JetStream, and the same
load generator hits them in alternating rounds, so noise hits both alike.
Targets: gateway throughput >= 0.6x the bare handler, gateway p99 <= 20 ms.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import asyncpg

from deploy.local.infra import NatsServer, free_port
from services.gateway.hooks.signature import new_secret
from tests.bench.harness import free_cpu_note, report, run_loadgen
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.services import ServiceProcess

DURATION = float(os.environ.get("BENCH_DURATION", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))

WEBHOOK_WORKFLOW = {
    "name": "bench",
    "trigger": {"type": "webhook"},
    "action": {"type": "http_request", "config": {"method": "POST", "url": "https://example.com/hook"}},
}


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
    for round_no in range(ROUNDS):
        for name, svc, key in (("bare publish", baseline, None), ("gateway", gateway, secret)):
            result = run_loadgen(f"{svc.url}/hooks/{workflow_id}", secret=key, duration=DURATION,
                                 concurrency=CONCURRENCY)
            assert result["statuses"].get("202", 0) == result["requests"], result
            rows.append({"round": round_no, "server": name, **{k: result[k] for k in
                                                               ("rps", "p50_ms", "p99_ms", "requests")}})

    def best(server: str, key: str) -> float:
        return max(float(r[key]) for r in rows if r["server"] == server)

    ratio = best("gateway", "rps") / best("bare publish", "rps")
    gateway_p99 = min(float(r["p99_ms"]) for r in rows if r["server"] == "gateway")
    rows.append({"server": "ratio gateway/bare", "rps": round(ratio, 3), "note": free_cpu_note()})
    verdicts = {"gateway >= 0.6x bare publish": ratio >= 0.6, "gateway p99 <= 20 ms": gateway_p99 <= 20.0}
    report("ingest", rows, verdicts)
    assert all(verdicts.values()), verdicts
