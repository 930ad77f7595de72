"""P7: what tracing costs at ingest, side by side: no OTLP endpoint (spans made, nothing exported)
against export on (every span batched and sent to a collector stand-in, ``otlp_sink.py``).

Two gateways against the same JetStream and workflow, driven by ``wrk`` in alternating rounds so
that noise hits both alike; each one's best round counts.  Target: with no endpoint the gateway is
at least as fast as with export on (within ``TOLERANCE``): no exporter work is done at all.  The
figures (and the cost of export, on/off) go to ``tests/bench/results/latest.json``.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

from deploy.local.infra import NatsServer
from services.gateway.hooks.signature import new_secret
from tests.bench.harness import gateway_env, record_result, report, stand_in
from tests.bench.test_bench_ingest import _workflow, alternating_rounds, best
from tests.helpers.services import ServiceProcess

TOLERANCE = 0.95


def test_p7_tracing_without_an_endpoint_costs_nothing_next_to_export(
    database_url: str, nats_server: NatsServer, tmp_path: Path, service: Callable[..., ServiceProcess]
) -> None:
    secret = new_secret()
    workflow_id = asyncio.run(_workflow(database_url, secret, "https://example.com"))
    sink = stand_in(service, "otlp_sink")
    env = gateway_env(nats_server.url, database_url)  # one keyring for both: each reads the sealed secret
    off = service("services.gateway", env=env)
    on = service(
        "services.gateway", env={**env, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url}
    )
    measured = alternating_rounds({"no endpoint": off, "export on": on}, secret, workflow_id, tmp_path, {})
    rows = [{"tracing": r["server"], **{k: r[k] for k in ("round", "rps", "p99_ms", "load")}} for r in measured]
    with urllib.request.urlopen(f"{sink.url}/stats", timeout=5) as resp:  # noqa: S310 - a local test server
        exported = json.loads(resp.read())
    without, with_export = best(measured, "no endpoint"), best(measured, "export on")
    ratio = float(without["rps"]) / float(with_export["rps"])
    rows.append({"tracing": "no endpoint / export on", "rps": round(ratio, 3)})
    record_result(
        "P7",
        {
            "rps_no_endpoint": without["rps"],
            "rps_export_on": with_export["rps"],
            "ratio": round(ratio, 3),
            "exports_received": exported["exports"],
        },
    )
    verdicts = {
        f"P7: no endpoint >= {TOLERANCE}x export on (is {ratio:.2f}x)": ratio >= TOLERANCE,
        "P7: the exporting gateway did export": exported["exports"] > 0,
    }
    report("P7-tracing", rows, verdicts)
    assert all(verdicts.values()), verdicts
