"""The executor's /metrics after a known workload, as Prometheus reads it.

An executor process (one slot, so a burst waits in JetStream) runs: tenant A's eight events to a
slow healthy target and three to a target that refuses them (400, dead-lettered), and tenant B's
events to a Slack that answers 500 until B's breaker opens.  The exposition parses with the
Prometheus text parser; the counters are the exact numbers sent, succeeded and dead; consumer lag
rises while the burst waits and falls to 0 after; the breaker series names B's (tenant, connector)
and nothing of A's; an OpenMetrics scrape carries a trace-id exemplar that is an execution's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import Answer, definition, executor_env, publish_event
from tests.helpers.monitoring import metric_names
from tests.helpers.services import OPENMETRICS, ServiceProcess, exemplar_trace_ids, metrics_text
from tests.helpers.wait import wait_until

pytestmark = [pytest.mark.slow]


def scrape(svc: ServiceProcess, accept: str | None = None) -> str:
    return metrics_text(svc.metrics_url, accept)


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), s.value) for family in text_string_to_metric_families(text) for s in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float:
    found = [v for n, lbl, v in samples(text) if n == name and all(lbl.get(k) == w for k, w in labels.items())]
    return sum(found)


@pytest.mark.timeout(90)
async def test_metrics_after_a_known_workload(
    bus: Any, db: Any, nats_url: str, database_url: str, service: Any, sinks: Any, creds: Any
) -> None:
    ok = await sinks(lambda _req, _n: Answer(200, "{}", delay=0.25))
    refusing = await sinks(lambda _req, _n: Answer(400, "no"))
    broken = await sinks(lambda _req, _n: Answer(500, "down"))
    tenant_a, tenant_b = await create_tenant(db), await create_tenant(db)
    healthy = await create_workflow(db, tenant_a, definition("http_request", {"url": f"{ok.url}/ok"}))
    refused = await create_workflow(db, tenant_a, definition("http_request", {"url": f"{refusing.url}/no"}))
    cred = creds.add(tenant_b, "slack", {"webhook_url": f"{broken.url}/services/T/B/X"})
    failing = await create_workflow(db, tenant_b, definition("slack_message", {"text": "hi"}, cred))
    ex = service(
        "services.executor",
        env=executor_env(
            nats_url,
            database_url,
            IPAAS_EXECUTOR_MAX_IN_FLIGHT="1",
            IPAAS_EXECUTOR_FAIRNESS_HEADROOM="0",
            IPAAS_EXECUTOR_STATS_INTERVAL_SECONDS="0.1",
            IPAAS_EXECUTOR_BREAKER_FAIL_MAX="2",
            IPAAS_EXECUTOR_BREAKER_RESET_SECONDS="120",
        ),
    )

    # A burst that one slot works through in about two seconds: the lag rises, then falls to 0.
    for i in range(8):
        await publish_event(bus, tenant_a, healthy, {"n": i})
    seen_lag = 0.0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and ok.calls < 8:
        seen_lag = max(seen_lag, value(await asyncio.to_thread(scrape, ex), "ipaas_executor_consumer_pending"))
        await asyncio.sleep(0.05)
    assert seen_lag >= 3, f"lag never rose while the burst waited (max seen {seen_lag})"

    async def drained() -> bool:
        text = await asyncio.to_thread(scrape, ex)
        return (
            value(text, "ipaas_executor_consumer_pending") == 0
            and value(text, "ipaas_executor_consumer_ack_pending") == 0
            and value(text, "ipaas_executor_executions_total", connector="http_request", status="succeeded") == 8
        )

    await wait_until(drained, timeout=20, message="the lag back at 0 and eight successes")

    for i in range(3):
        await publish_event(bus, tenant_a, refused, {"n": i})
    for i in range(2):
        await publish_event(bus, tenant_b, failing, {"n": i})

    async def settled() -> str | None:
        text = await asyncio.to_thread(scrape, ex)
        dead = value(text, "ipaas_executor_executions_total", connector="http_request", status="dead")
        b_open = value(
            text, "ipaas_executor_breaker_state", tenant=str(tenant_b), connector="slack_message", state="open"
        )
        return text if dead == 3 and b_open == 1 else None

    text = await wait_until(settled, timeout=30, message="three dead letters and B's breaker open")
    assert value(text, "ipaas_executor_executions_total", connector="http_request", status="succeeded") == 8
    assert value(text, "ipaas_executor_executions_total", connector="http_request", status="failed") == 0
    assert value(text, "ipaas_executor_dead_letters_total", connector="http_request") == 3
    assert value(text, "ipaas_executor_action_duration_seconds_count", connector="http_request") == 11
    assert ok.calls == 8 and refusing.calls == 3
    breakers = [lbl for n, lbl, _ in samples(text) if n == "ipaas_executor_breaker_state"]
    assert breakers == [{"tenant": str(tenant_b), "connector": "slack_message", "state": "open"}]
    assert value(text, "ipaas_executor_breakers_unlisted") == 0
    # Every executor metric the shipped dashboard and alert rules read has samples after this workload.
    have = {n for n, _, _ in samples(text)}
    wanted = {n for n in metric_names() if n.startswith(("ipaas_executor_", "ipaas_stream_"))}
    assert wanted and not [n for n in wanted if not any(h == n or h.startswith(n + "_") for h in have)]

    # OpenMetrics, when asked for: parses, and the duration's exemplars are executions' trace ids.
    om = await asyncio.to_thread(scrape, ex, OPENMETRICS)
    exemplars = exemplar_trace_ids(om, "ipaas_executor_action_duration_seconds_bucket", connector="http_request")
    assert exemplars, "no trace-id exemplar in the OpenMetrics exposition"
    rows = await db.fetch("SELECT trace_id FROM executions WHERE workflow_id = ANY($1::uuid[])", [healthy, refused])
    assert exemplars <= {r["trace_id"] for r in rows}
    assert all(len(t) == 32 and uuid.UUID(t) for t in exemplars)
