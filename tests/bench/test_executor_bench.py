"""P2 (drain) and P4 (memory): two executor replicas draining a backlog into a fast fake Slack.

P2 drains ``BENCH_EXECUTOR_EVENTS`` (default 50,000) events, P4 ``BENCH_P4_EVENTS``
(default 1,000,000) and watches memory.  The backlog is published first (in
chunks, not timed); then two executor processes start and drain it into a fake Slack that
runs in a process of its own.  Every half second the bench samples the count
of committed ``succeeded`` rows and each replica's RSS.

Throughput is reported two ways: end to end (replicas started -> last row
committed, start-up included) and steady (the window in which the committed
count went from 10 % to 90 % of the backlog).  The target applies to steady.
Targets: P2 >= 5,000 executions/s steady with two replicas; P4 every replica's
RSS <= 150 MB throughout, and flat (the second half of the drain peaks at most
20 MB above the first half).  Figures go to ``tests/bench/results/latest.json``.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import psutil

from tests.bench.harness import executor_overrides, free_cpu_note, record_result, report, stand_in
from tests.helpers.fakes import CredentialResponder, executor_env, publish_many, slack_workflow, webhook_envelopes

P2_EVENTS = int(os.environ.get("BENCH_EXECUTOR_EVENTS", "50000"))
P4_EVENTS = int(os.environ.get("BENCH_P4_EVENTS", "1000000"))
CHUNK = 50_000
TARGET_PER_S = 5000.0
RSS_LIMIT_MB = 150.0
RSS_DRIFT_MB = 20.0
SAMPLE_S = 0.5


def _mb(n: float) -> float:
    return round(n / 2**20, 1)


def _at(samples: list[tuple[float, int, list[int]]], fraction: float, events: int) -> float:
    """The first sample time at which the committed count reached ``fraction`` of the backlog."""
    return next(t for t, done, _ in samples if done >= fraction * events)


async def test_p2_drain_throughput(
    bus: Any, db: Any, nats_url: str, database_url: str, service: Any, creds: CredentialResponder
) -> None:
    await _drain(bus, db, nats_url, database_url, service, creds, P2_EVENTS, "P2")


async def test_p4_memory_through_a_large_backlog(
    bus: Any, db: Any, nats_url: str, database_url: str, service: Any, creds: CredentialResponder
) -> None:
    await _drain(bus, db, nats_url, database_url, service, creds, P4_EVENTS, "P4")


async def _drain(
    bus: Any, db: Any, nats_url: str, database_url: str, service: Any, creds: CredentialResponder, EVENTS: int, key: str
) -> None:
    drain_timeout_s = 120.0 + EVENTS / 1000
    sink = stand_in(service, "sink_server")
    tenant, wf = await slack_workflow(db, creds, sink.url, "order {{ payload.i }}")
    published = time.monotonic()
    for start in range(0, EVENTS, CHUNK):
        envelopes = webhook_envelopes(tenant, wf, min(CHUNK, EVENTS - start), start=start)
        await publish_many(bus, envelopes, concurrency=512)
    publish_s = time.monotonic() - published

    env = executor_env(nats_url, database_url, LOG_LEVEL="WARNING", **executor_overrides())
    started = time.monotonic()
    replicas = [service("services.executor", env=env, wait=False) for _ in range(2)]
    # Wait for readiness off the loop: the credential responder lives on this loop.
    await asyncio.gather(*(asyncio.to_thread(r.wait_ready, 60.0) for r in replicas))
    ready_s = time.monotonic() - started
    procs = [psutil.Process(r.proc.pid) for r in replicas]
    samples: list[tuple[float, int, list[int]]] = []
    deadline = started + drain_timeout_s
    while True:
        done = int(await db.fetchval("SELECT count(*) FROM executions WHERE status = 'succeeded'"))
        samples.append((time.monotonic() - started, done, [p.memory_info().rss for p in procs]))
        if done >= EVENTS or time.monotonic() > deadline:
            break
        await asyncio.sleep(SAMPLE_S)
    assert samples[-1][1] >= EVENTS, f"backlog not drained in {drain_timeout_s}s: {samples[-1][1]}/{EVENTS}"
    cpu = [round(sum(p.cpu_times()[:2]), 1) for p in procs]
    failures = await db.fetchval("SELECT count(*) FROM executions WHERE status <> 'succeeded'")

    total_s = samples[-1][0]
    steady_s = _at(samples, 0.9, EVENTS) - _at(samples, 0.1, EVENTS)
    steady = 0.8 * EVENTS / steady_s if steady_s > 0 else float("inf")
    end_to_end = EVENTS / total_s
    rss = [s[2] for s in samples]
    peak = max(max(r) for r in rss)
    half = len(rss) // 2
    first_half = max(max(r) for r in rss[: max(1, half)])
    second_half = max(max(r) for r in rss[half:])
    rows: list[dict[str, Any]] = [
        {"metric": "events", "value": EVENTS},
        {"metric": "publish backlog s (setup, not measured)", "value": round(publish_s, 1)},
        {"metric": "replicas ready s", "value": round(ready_s, 1)},
        {"metric": "drain s (start-up included)", "value": round(total_s, 1)},
        {"metric": "executions/s end to end", "value": round(end_to_end)},
        {"metric": "executions/s steady (10%->90%)", "value": round(steady)},
        {"metric": "non-succeeded rows", "value": failures},
        {"metric": "replica CPU s", "value": cpu},
        {"metric": "RSS MB start (per replica)", "value": [_mb(x) for x in rss[0]]},
        {"metric": "RSS MB peak (per replica)", "value": [_mb(max(r[i] for r in rss)) for i in range(2)]},
        {"metric": "RSS MB end (per replica)", "value": [_mb(x) for x in rss[-1]]},
        {"metric": "RSS MB peak first/second half", "value": [_mb(first_half), _mb(second_half)]},
        {"metric": "RSS MB timeline (max of replicas, ~every 2 s)", "value": [_mb(max(r)) for r in rss[::4]]},
        {"metric": "machine", "value": free_cpu_note()},
    ]
    drift = _mb(second_half - first_half)
    verdicts = {f"{key}: every event succeeded": failures == 0}
    if key == "P2":
        record_result("P2", {"eps": round(steady), "end_to_end_eps": round(end_to_end), "events": EVENTS})
        verdicts[f"P2: steady >= {TARGET_PER_S:.0f} executions/s, two replicas (is {steady:.0f})"] = (
            steady >= TARGET_PER_S
        )
    else:
        record_result("P4", {"max_rss_mb": _mb(peak), "rss_drift_mb": drift, "events": EVENTS, "eps": round(steady)})
        verdicts[f"P4: RSS <= {RSS_LIMIT_MB:.0f} MB per replica (is {_mb(peak)})"] = _mb(peak) <= RSS_LIMIT_MB
        verdicts[f"P4: RSS flat, second half <= first half + {RSS_DRIFT_MB:.0f} MB (is +{drift})"] = (
            drift <= RSS_DRIFT_MB
        )
    report(key, rows, verdicts)
    assert all(verdicts.values()), verdicts
