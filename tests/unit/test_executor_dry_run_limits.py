"""Dry-run admission and deadlines (pure logic); the same limits against real NATS are in
tests/integration/test_dry_run_limits.py."""

from __future__ import annotations

import uuid

import pytest

from services.executor.dry_run_limits import Admissions, DryRunLimits, admit, deadline
from services.executor.settings import ExecutorSettings
from services.gateway.routes.runs import executor_timeout_ms

LIMITS = DryRunLimits(concurrency=2, queue=1, per_tenant=2, max_seconds=30.0)


def test_a_tenant_over_its_share_is_refused_before_a_full_queue_is_considered() -> None:
    assert admit(admitted=0, tenant_admitted=0, limits=LIMITS) is None
    assert admit(admitted=2, tenant_admitted=1, limits=LIMITS) is None  # waits in the queue
    assert admit(admitted=3, tenant_admitted=0, limits=LIMITS) == "queue_full"
    assert admit(admitted=1, tenant_admitted=2, limits=LIMITS) == "tenant_limit"
    assert admit(admitted=3, tenant_admitted=2, limits=LIMITS) == "tenant_limit"  # its own excess comes first


def test_admissions_count_running_and_waiting_per_tenant_and_forget_a_tenant_that_left() -> None:
    greedy, other, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    seen = Admissions(LIMITS)
    assert [seen.try_admit(greedy) for _ in range(3)] == [None, None, "tenant_limit"]
    assert seen.try_admit(other) is None  # the queue's one place
    assert seen.try_admit(third) == "queue_full"
    assert seen.admitted == 3 and seen.of(greedy) == 2
    seen.release(greedy)
    assert seen.try_admit(third) is None
    for tenant in (greedy, other, third):
        seen.release(tenant)
    assert seen.admitted == 0 and seen.of(greedy) == 0 and not seen._per_tenant


@pytest.mark.parametrize(("timeout_ms", "expected"), [(None, 130.0), (1500, 101.5), (600_000, 130.0)])
def test_the_deadline_is_the_requesters_patience_from_receipt_capped_by_the_maximum(
    timeout_ms: int | None,
    expected: float,
) -> None:
    assert deadline(100.0, timeout_ms, LIMITS) == expected


def test_the_gateway_leaves_the_reply_time_to_come_back() -> None:
    assert executor_timeout_ms(15.0) == 14_500
    assert executor_timeout_ms(0.4) == 200  # never less than half the wait


def test_limits_come_from_the_executor_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DryRunLimits.from_settings(ExecutorSettings()) == DryRunLimits(16, 64, 4, 30.0)
    monkeypatch.setenv("IPAAS_EXECUTOR_DRY_RUN_PER_TENANT", "1")
    monkeypatch.setenv("IPAAS_EXECUTOR_DRY_RUN_QUEUE", "0")
    limits = DryRunLimits.from_settings(ExecutorSettings())
    assert limits.per_tenant == 1 and limits.queue == 0
