"""What a replica takes on in dry-runs: a bounded queue, a per-tenant share, and a deadline per request.

A request is *admitted* when it runs or waits for one of ``concurrency`` slots.
At most ``concurrency + queue`` are admitted at once, and at most ``per_tenant``
of them belong to one tenant (running and waiting together), so one tenant can
neither fill the queue nor hold every slot.  The tenant check comes first: a
tenant over its share is told so (the gateway's 429) even when the replica is
also full (its 503).

Each admitted request has a deadline: when it was received plus the time its
requester said it would wait (``timeout_ms``), never more than ``max_seconds``.
A request still waiting at its deadline leaves the queue without running; one
running at its deadline is cancelled.  The budget is relative, counted from
receipt on this replica's monotonic clock, so clocks of the gateway and the
executor need not agree.

Limits are per replica: NATS hands each request to one replica of the queue
group, so the fleet's capacity is the sum and a tenant's share is ``per_tenant``
on each replica.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from services.executor.settings import ExecutorSettings

Refusal = Literal["tenant_limit", "queue_full"]


@dataclass(frozen=True, slots=True)
class DryRunLimits:
    concurrency: int = 16
    queue: int = 64
    per_tenant: int = 4
    max_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> DryRunLimits:
        return cls(
            concurrency=settings.dry_run_concurrency,
            queue=settings.dry_run_queue,
            per_tenant=settings.dry_run_per_tenant,
            max_seconds=settings.dry_run_max_seconds,
        )


def admit(admitted: int, tenant_admitted: int, limits: DryRunLimits) -> Refusal | None:
    """Whether one more request of a tenant may be admitted (``None``), or why not."""
    if tenant_admitted >= limits.per_tenant:
        return "tenant_limit"
    if admitted >= limits.concurrency + limits.queue:
        return "queue_full"
    return None


def deadline(received: float, timeout_ms: int | None, limits: DryRunLimits) -> float:
    """When to give up on a request received at ``received`` (a monotonic time)."""
    budget = limits.max_seconds if timeout_ms is None else min(timeout_ms / 1000, limits.max_seconds)
    return received + budget


class Admissions:
    """The admitted requests, in total and per tenant (a tenant's entry goes when its last request does)."""

    def __init__(self, limits: DryRunLimits) -> None:
        self.limits = limits
        self.admitted = 0
        self._per_tenant: Counter[uuid.UUID] = Counter()

    def try_admit(self, tenant_id: uuid.UUID) -> Refusal | None:
        refusal = admit(self.admitted, self._per_tenant[tenant_id], self.limits)
        if refusal is None:
            self.admitted += 1
            self._per_tenant[tenant_id] += 1
        return refusal

    def release(self, tenant_id: uuid.UUID) -> None:
        self.admitted -= 1
        self._per_tenant[tenant_id] -= 1
        if self._per_tenant[tenant_id] <= 0:
            del self._per_tenant[tenant_id]

    def of(self, tenant_id: uuid.UUID) -> int:
        return self._per_tenant.get(tenant_id, 0)
