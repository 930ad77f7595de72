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

import nats

from deploy.local.infra import NatsServer
from services.gateway.hooks.signature import new_secret
from tests.bench.harness import (
    CpuSampler,
    executor_overrides,
    free_cpu_note,
    gateway_env,
    nats_pid,
    record_result,
    report,
    stand_in,
)
from tests.bench.wrk import presigned_script, run_wrk
from tests.helpers.factories import connection, create_tenant, create_workflow, fetchval_once
from tests.helpers.fakes import definition, executor_env
from tests.helpers.services import ServiceProcess
from tests.helpers.wait import wait_until_sync

DURATION = float(os.environ.get("BENCH_DURATION", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "50"))
FULL_DURATION = float(os.environ.get("BENCH_FULL_DURATION", "15"))
REQUESTS_PER_SCRIPT = int(os.environ.get("BENCH_PRESIGNED", "150000"))
TARGET_RATIO, TARGET_P99_MS, TARGET_FULL = 0.6, 20.0, 2000.0


async def _transactions(database_url: str) -> int:
    """Committed plus rolled-back transactions of this database so far (flushed statistics)."""
    async with connection(database_url) as conn:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        return int(
            await conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
            )
        )


def _succeeded(database_url: str) -> int:
    return int(asyncio.run(fetchval_once(database_url, "SELECT count(*) FROM executions WHERE status = 'succeeded'")))


async def _drop_streams(nats_url: str) -> None:
    async with await nats.connect(nats_url) as nc:
        js = nc.jetstream()
        for name in ("BASELINE", "EVENTS"):
            with contextlib.suppress(Exception):
                await js.delete_stream(name)


async def _workflow(database_url: str, secret: str, sink_url: str) -> str:
    """A new tenant's webhook workflow (signed with ``secret``) posting each order to ``sink_url``."""
    config = {"method": "POST", "url": f"{sink_url}/hook", "body": {"order": "{{ payload.order_id }}"}}
    async with connection(database_url) as conn:
        tenant = await create_tenant(conn)
        wf = await create_workflow(
            conn, tenant, definition("http_request", config, name="bench"), webhook_secret=secret
        )
    return str(wf)


def _round(svc: ServiceProcess, script: Path, duration: float, others: dict[str, int]) -> dict[str, Any]:
    with CpuSampler({"server": svc.proc.pid, **others}) as cpu:
        result = run_wrk(svc.url, script, duration=duration, connections=CONNECTIONS)
    return {**result, "cpu": cpu.averages(), "load": round(os.getloadavg()[0], 2)}


def alternating_rounds(
    servers: dict[str, ServiceProcess], secret: str, workflow_id: str, tmp_path: Path, others: dict[str, int]
) -> list[dict[str, Any]]:
    """``ROUNDS`` rounds of ``wrk`` against each of ``servers`` in turn, so noise hits all alike; every answer a 2xx.

    A row per round and server: wrk's summary, CPU per process (the server and ``others``), the load average.
    """
    rows: list[dict[str, Any]] = []
    for round_no in range(ROUNDS):
        for name, svc in servers.items():
            # Fresh signatures each round (the timestamp tolerance is 5 minutes); the floor ignores them.
            script = presigned_script(
                tmp_path / f"r{round_no}.lua", secret, f"/hooks/{workflow_id}", REQUESTS_PER_SCRIPT, threads=2
            )
            result = _round(svc, script, DURATION, others)
            assert result["non2xx"] == 0 and result["errors"] == 0, (name, result)
            rows.append({"round": round_no, "server": name, **result})
    return rows


def best(rows: list[dict[str, Any]], server: str) -> dict[str, Any]:
    """``server``'s round with the highest rate."""
    return max((r for r in rows if r["server"] == server), key=lambda r: float(r["rps"]))


def test_p1_ingest_vs_bare_publish(
    database_url: str, nats_server: NatsServer, tmp_path: Path, service: Callable[..., ServiceProcess]
) -> None:
    secret = new_secret()
    workflow_id = asyncio.run(_workflow(database_url, secret, "https://example.com"))
    gateway = service("services.gateway", env=gateway_env(nats_server.url, database_url))
    baseline = stand_in(service, "baseline_server", "--nats", nats_server.url)
    transactions_before = asyncio.run(_transactions(database_url))
    servers = {"bare publish": baseline, "gateway": gateway}
    rows = alternating_rounds(servers, secret, workflow_id, tmp_path, nats_pid(nats_server))

    time.sleep(1.5)  # other backends flush their statistics within about a second of going idle
    db_transactions = asyncio.run(_transactions(database_url)) - transactions_before
    accepted = sum(int(r["requests"]) for r in rows if r["server"] == "gateway")
    gateway.terminate()
    baseline.terminate()
    asyncio.run(_drop_streams(nats_server.url))
    gw, floor = best(rows, "gateway"), best(rows, "bare publish")
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
    sink = stand_in(service, "sink_server")
    workflow_id = asyncio.run(_workflow(database_url, secret, sink.url))
    gateway = service("services.gateway", env=gateway_env(nats_server.url, database_url))
    env = executor_env(nats_server.url, database_url, LOG_LEVEL="WARNING", **executor_overrides())
    executors = [service("services.executor", env=env) for _ in range(2)]
    script = presigned_script(tmp_path / "full.lua", secret, f"/hooks/{workflow_id}", REQUESTS_PER_SCRIPT, threads=2)
    others = {**{f"executor-{i}": ex.proc.pid for i, ex in enumerate(executors)}, **nats_pid(nats_server)}
    before = _succeeded(database_url)
    started = time.monotonic()
    result = _round(gateway, script, FULL_DURATION, others)
    elapsed = time.monotonic() - started
    executed_per_s = round((_succeeded(database_url) - before) / elapsed, 1)
    # Whatever was accepted is executed in the end (the backlog left when the load stopped).
    accepted = result["requests"] - result["non2xx"]
    wait_until_sync(lambda: _succeeded(database_url) - before >= accepted, 120, 0.5, "every accepted webhook executed")
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
