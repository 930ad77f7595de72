"""P1 and P1-full: signed webhooks through the gateway, driven by ``wrk``, against the bare floor.

**P1 (ingest).** The gateway (executors stopped) and a bare aiohttp handler
that only awaits a JetStream publish (``baseline_server.py``), both processes
against the same private JetStream, are driven by ``wrk`` (50 connections,
pre-signed requests, each a new event) in alternating rounds, so noise hits
both alike; each server's best round counts.  Targets: gateway >= 0.6x the
floor, gateway p99 <= 20 ms (the median of its rounds), no per-request
database work (the gateway's database sees far fewer transactions than it
accepted webhooks, from ``pg_stat_database``).

**P1-full.** The same with the whole path running: two executors draining into
a fake target in its own process.  Executions per second is the rate at which
committed ``succeeded`` rows grew during the load.  Target: >= 2,000 webhooks/s
accepted and executed, sustained.

CPU per process (percent of one core) and the load average are printed beside
every figure; the figures go to ``tests/bench/results/latest.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import nats

from deploy.local.infra import NatsServer, free_port
from services.gateway.hooks.signature import new_secret
from tests.bench.harness import CpuSampler, executor_overrides, free_cpu_note, gateway_env, record_result, report
from tests.bench.wrk import presigned_script, run_wrk
from tests.helpers.factories import create_tenant, create_workflow, fetchval_once
from tests.helpers.fakes import executor_env
from tests.helpers.services import ServiceProcess

DURATION = float(os.environ.get("BENCH_DURATION", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "50"))
FULL_DURATION = float(os.environ.get("BENCH_FULL_DURATION", "15"))
REQUESTS_PER_SCRIPT = int(os.environ.get("BENCH_PRESIGNED", "150000"))
TARGET_RATIO, TARGET_P99_MS, TARGET_FULL = 0.6, 20.0, 2000.0


def _workflow_definition(sink_url: str) -> dict[str, Any]:
    return {
        "name": "bench",
        "trigger": {"type": "webhook"},
        "action": {
            "type": "http_request",
            "config": {"method": "POST", "url": f"{sink_url}/hook", "body": {"order": "{{ payload.order_id }}"}},
        },
    }


async def _transactions(database_url: str) -> int:
    """Committed plus rolled-back transactions of this database so far (flushed statistics)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        return int(
            await conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
            )
        )
    finally:
        await conn.close()


def _succeeded(database_url: str) -> int:
    return int(asyncio.run(fetchval_once(database_url, "SELECT count(*) FROM executions WHERE status = 'succeeded'")))


async def _drop_streams(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for name in ("BASELINE", "EVENTS"):
            with contextlib.suppress(Exception):
                await js.delete_stream(name)
    finally:
        await nc.close()


async def _workflow(database_url: str, secret: str, sink_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        tenant = await create_tenant(conn)
        wf = await create_workflow(conn, tenant, _workflow_definition(sink_url), webhook_secret=secret)
    finally:
        await conn.close()
    return str(wf)


def _round(svc: ServiceProcess, script: Path, duration: float, others: dict[str, int]) -> dict[str, Any]:
    with CpuSampler({"server": svc.proc.pid, **others}) as cpu:
        result = run_wrk(svc.url, script, duration=duration, connections=CONNECTIONS)
    return {**result, "cpu": cpu.averages(), "load": round(os.getloadavg()[0], 2)}


def test_p1_ingest_vs_bare_publish(
    database_url: str, nats_server: NatsServer, tmp_path: Path, service: Callable[..., ServiceProcess]
) -> None:
    secret = new_secret()
    workflow_id = asyncio.run(_workflow(database_url, secret, "https://example.com"))
    gateway = service("services.gateway", env=gateway_env(nats_server.url, database_url))
    baseline = service(
        "tests.bench.baseline_server",
        env={},
        port=(port := free_port()),
        args=("--port", str(port), "--nats", nats_server.url),
    )
    nats_pid = {"nats-server": nats_server.proc.pid} if nats_server.proc is not None else {}

    rows: list[dict[str, Any]] = []
    transactions_before = asyncio.run(_transactions(database_url))
    for round_no in range(ROUNDS):
        for name, svc in (("bare publish", baseline), ("gateway", gateway)):
            # Fresh signatures each round (the timestamp tolerance is 5 minutes); the floor ignores them.
            script = presigned_script(
                tmp_path / f"r{round_no}.lua", secret, f"/hooks/{workflow_id}", REQUESTS_PER_SCRIPT, threads=2
            )
            result = _round(svc, script, DURATION, nats_pid)
            assert result["non2xx"] == 0 and result["errors"] == 0, (name, result)
            rows.append({"round": round_no, "server": name, **result})

    time.sleep(1.5)  # other backends flush their statistics within about a second of going idle
    db_transactions = asyncio.run(_transactions(database_url)) - transactions_before
    accepted = sum(int(r["requests"]) for r in rows if r["server"] == "gateway")
    gateway.terminate()
    baseline.terminate()
    asyncio.run(_drop_streams(nats_server.url))

    def best(server: str) -> dict[str, Any]:
        return max((r for r in rows if r["server"] == server), key=lambda r: float(r["rps"]))

    gw, floor = best("gateway"), best("bare publish")
    ratio = gw["rps"] / floor["rps"]
    gateway_p99 = statistics.median(float(r["p99_ms"]) for r in rows if r["server"] == "gateway")
    rows.append({"server": "ratio gateway/bare", "rps": round(ratio, 3), "load": free_cpu_note()})
    rows.append({"server": "gateway DB transactions", "requests": accepted, "note": db_transactions})
    record_result(
        "P1",
        {
            "rps": gw["rps"],
            "floor_rps": floor["rps"],
            "ratio": round(ratio, 3),
            "p99_ms": gateway_p99,
            "non2xx": sum(int(r["non2xx"]) for r in rows if "non2xx" in r),
            "cpu_gateway": gw["cpu"],
            "cpu_floor": floor["cpu"],
        },
    )
    verdicts = {
        f"P1: gateway >= {TARGET_RATIO}x bare publish (is {ratio:.2f}x)": ratio >= TARGET_RATIO,
        f"P1: gateway p99 <= {TARGET_P99_MS:.0f} ms, median round (is {gateway_p99:.1f} ms)": gateway_p99
        <= TARGET_P99_MS,
        "P1: no per-request DB query (transactions < 1% of webhooks)": db_transactions < accepted / 100,
    }
    report("P1-ingest", rows, verdicts)
    assert all(verdicts.values()), verdicts


def test_p1_full_stack_accepts_and_executes(
    database_url: str, nats_server: NatsServer, tmp_path: Path, service: Callable[..., ServiceProcess]
) -> None:
    secret = new_secret()
    sink = service("tests.bench.sink_server", env={}, port=(port := free_port()), args=("--port", str(port)))
    workflow_id = asyncio.run(_workflow(database_url, secret, sink.url))
    gateway = service("services.gateway", env=gateway_env(nats_server.url, database_url))
    env = executor_env(nats_server.url, database_url, LOG_LEVEL="WARNING", **executor_overrides())
    executors = [service("services.executor", env=env) for _ in range(2)]
    script = presigned_script(tmp_path / "full.lua", secret, f"/hooks/{workflow_id}", REQUESTS_PER_SCRIPT, threads=2)
    others = {f"executor-{i}": ex.proc.pid for i, ex in enumerate(executors)}
    if nats_server.proc is not None:
        others["nats-server"] = nats_server.proc.pid
    before = _succeeded(database_url)
    started = time.monotonic()
    result = _round(gateway, script, FULL_DURATION, others)
    elapsed = time.monotonic() - started
    during = _succeeded(database_url) - before
    executed_per_s = round(during / elapsed, 1)
    # Whatever was accepted is executed in the end (the backlog left when the load stopped).
    deadline = time.monotonic() + 120
    while _succeeded(database_url) - before < result["requests"] - result["non2xx"]:
        assert time.monotonic() < deadline, "the accepted webhooks were not all executed within 2 minutes"
        time.sleep(0.5)
    for proc in (gateway, *executors):
        proc.terminate()
    asyncio.run(_drop_streams(nats_server.url))
    sustained = min(result["rps"], executed_per_s)
    record_result(
        "P1-full",
        {
            "rps": result["rps"],
            "executed_per_s": executed_per_s,
            "p99_ms": result["p99_ms"],
            "non2xx": result["non2xx"],
            "cpu": result["cpu"],
        },
    )
    rows = [
        {"what": "accepted /s (wrk, 202)", "value": result["rps"]},
        {"what": "executed /s during the load", "value": executed_per_s},
        {"what": "gateway p50/p99 ms", "value": [result["p50_ms"], result["p99_ms"]]},
        {"what": "non-2xx, errors", "value": [result["non2xx"], result["errors"]]},
        {"what": "CPU % of one core", "value": result["cpu"]},
        {"what": "machine", "value": free_cpu_note()},
    ]
    verdicts = {
        f"P1-full: >= {TARGET_FULL:.0f} webhooks/s accepted and executed (is {sustained:.0f}/s)": sustained
        >= TARGET_FULL
    }
    report("P1-full", rows, verdicts)
    assert all(verdicts.values()), verdicts
