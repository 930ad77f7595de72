"""Two gateway replicas and three executor replicas under one burst split across both gateways.

The gateways run as the Kubernetes base runs them, with ``IPAAS_GATEWAY_REPLICAS=2``: each
enforces half of a tenant's webhook rate and burst.  A greedy tenant sends far more than
its limit through both at once; together they accept no more than the limit over the
time it took plus the burst, and answer the rest 429 with ``Retry-After``.  A quiet
tenant, sending within its own budget at the same time, gets 202 for everything.  The
three executors share the one durable consumer: each runs some of the events, and the
ledger holds (every 202 exactly one final row, no row without a 202, nothing left in the
consumer or parked, no action run twice).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers.ledger import Ledger, http_workflow
from tests.helpers.services import metric, metrics_text

RATE = 100.0  # a tenant's webhooks per second, all gateways together
BURST = 100.0
REPLICAS = 2
GREEDY = 3000  # several times the limit for the seconds the burst lasts, even on a slow machine
QUIET = 40  # per gateway: within the tenant's share of the burst there, never refused


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_two_gateways_share_a_tenants_limit_and_three_executors_share_the_work(db, stack, bus, sink):
    limit = {
        "IPAAS_GATEWAY_WEBHOOK_RATE_PER_SECOND": str(RATE),
        "IPAAS_GATEWAY_WEBHOOK_BURST": str(BURST),
        "IPAAS_GATEWAY_REPLICAS": str(REPLICAS),
    }
    gateways = [stack.start_gateway(**limit) for _ in range(REPLICAS)]
    executors = [stack.start_executor() for _ in range(3)]
    greedy = await stack.tenant(http_workflow(f"{sink.url}/greedy"), name="greedy")
    quiet = await stack.tenant(http_workflow(f"{sink.url}/quiet"), name="quiet")

    per_gateway = [Ledger() for _ in gateways]
    quiet_ledger = Ledger()
    started = time.monotonic()
    await asyncio.gather(
        *(
            stack.send(ledger, greedy, GREEDY // REPLICAS, concurrency=24, gateway=gw)
            for ledger, gw in zip(per_gateway, gateways, strict=True)
        ),
        *(stack.send(quiet_ledger, quiet, QUIET, concurrency=2, gateway=gw) for gw in gateways),
    )
    took = max(a.answered_at for ledger in per_gateway for a in ledger.answers) - started

    greedy_ledger = Ledger([a for ledger in per_gateway for a in ledger.answers])
    statuses = greedy_ledger.statuses()
    assert set(statuses) <= {202, 429}, statuses
    budget = RATE * took + BURST
    assert statuses[202] <= budget, f"{statuses[202]} accepted in {took:.1f} s; the limit allows {budget:.0f}"
    # Each replica ran out of its share and refused the rest: the limit bit on both...
    for ledger in per_gateway:
        assert ledger.statuses()[429] > 0, ledger.statuses()
    assert all(a.retry_after for a in greedy_ledger.answers if a.status == 429)
    # ...and is not stricter than it should be: the tenant got most of what it may have.
    assert statuses[202] >= 0.6 * budget, f"{statuses[202]} accepted of the {budget:.0f} allowed"
    # The other tenant's budget is its own.
    assert quiet_ledger.statuses() == {202: QUIET * REPLICAS}

    ledger = Ledger(greedy_ledger.answers + quiet_ledger.answers)
    await ledger.settle(db, bus, timeout=90)
    figures = await ledger.check(db, bus, [greedy.workflow_id, quiet.workflow_id], sink)
    assert figures["rows"] == {"succeeded": len(ledger.accepted)}
    assert figures["extra_receipts"] == 0
    ran = [metric(metrics_text(ex.metrics_url), "ipaas_executor_executions_total") for ex in executors]
    assert sum(ran) == len(ledger.accepted) and all(n > 0 for n in ran), ran
