"""Executor throughput and memory: two replicas draining a backlog into a fast fake Slack.

Run with ``make bench``.  Prints one JSON line (executions/s, replica RSS).
Targets: at least 3,000 executions/s with two replicas on 2 cores; RSS at most 150 MB.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import psutil

from libs.common.models.events import EventEnvelope, event_id_for
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import CredentialResponder, FakeSink, definition, executor_env, publish_many
from tests.helpers.wait import wait_until

EVENTS = int(os.environ.get("BENCH_EXECUTOR_EVENTS", "20000"))


async def test_executor_throughput_and_rss(bus: Any, db: Any, nats_url: str, database_url: str, service: Any) -> None:
    sink = await FakeSink().start()
    creds = await CredentialResponder(nats_url).start()
    try:
        tenant = await create_tenant(db)
        cred = creds.add(tenant, "slack", {"webhook_url": f"{sink.url}/services/T/B/X"})
        wf = await create_workflow(db, tenant, definition("slack_message", {"text": "order {{ payload.i }}"}, cred))
        envelopes = [EventEnvelope(event_id=event_id_for(wf, f"k{i}"), dedup_key=f"k{i}", tenant_id=tenant,
                                   workflow_id=wf, workflow_version=1, trigger="webhook", payload={"i": i})
                     for i in range(EVENTS)]
        await publish_many(bus, envelopes, concurrency=512)
        env = executor_env(nats_url, database_url, LOG_LEVEL="WARNING", IPAAS_EXECUTOR_TENANT_SHARE="1")
        replicas = [service("services.executor", env=env), service("services.executor", env=env)]
        started = time.monotonic()
        peak_rss = 0

        async def done() -> bool:
            nonlocal peak_rss
            for r in replicas:
                peak_rss = max(peak_rss, psutil.Process(r.proc.pid).memory_info().rss)
            n = await db.fetchval("SELECT count(*) FROM executions WHERE status = 'succeeded'")
            return bool(n >= EVENTS)

        await wait_until(done, timeout=600, interval=0.2, message="backlog drained")
        elapsed = time.monotonic() - started
        cpu = [round(sum(psutil.Process(r.proc.pid).cpu_times()[:2]), 2) for r in replicas]
        result = {"events": EVENTS, "seconds": round(elapsed, 2), "executions_per_s": round(EVENTS / elapsed),
                  "peak_rss_mb": round(peak_rss / 2**20, 1), "sink_calls": sink.calls,
                  "replica_cpu_s": cpu, "test_process_cpu_s": round(sum(psutil.Process().cpu_times()[:2]), 2)}
        print(json.dumps(result))  # noqa: T201 - the benchmark's report
        await asyncio.sleep(0)
    finally:
        await creds.stop()
        await sink.stop()
