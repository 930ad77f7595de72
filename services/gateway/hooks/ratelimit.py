"""A token bucket per tenant, in memory, per replica: each replica's share of the tenant's limit.

Each tenant gets ``burst`` tokens, refilled at ``rate`` per second.  The
table is bounded: when it is full, the bucket touched least recently is
dropped (a dropped bucket comes back full, which only ever errs towards
accepting).  The clock is injectable for tests.

Across replicas (:meth:`TenantRateLimiter.share`): the tenant's limit is divided
by the number of gateway replicas, so N replicas together accept at most the
tenant's rate times the time, plus its burst, and no request waits on a shared
store.  That holds for any spread of the traffic; the tenant gets its whole
rate when the load balancer spreads its requests evenly (per request, as an
ingress does), less when they pile on one replica (a sender pinned to one
connection behind an L4 balancer).  Why not a shared bucket: see
docs/gateway.md ("Rate limit").
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TenantRateLimiter:
    __slots__ = ("_buckets", "_burst", "_clock", "_max", "_rate")

    def __init__(
        self, rate: float, burst: float, *, max_tenants: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._max = max_tenants
        self._clock = clock
        # tenant -> [tokens, last refill time]
        self._buckets: OrderedDict[object, list[float]] = OrderedDict()

    @classmethod
    def share(
        cls,
        rate: float,
        burst: float,
        *,
        replicas: int,
        max_tenants: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> TenantRateLimiter:
        """One replica's share of a tenant's limit: ``rate / replicas``, ``burst / replicas`` (at least 1)."""
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        return cls(rate / replicas, max(1.0, burst / replicas), max_tenants=max_tenants, clock=clock)

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        return self._burst

    def acquire(self, tenant: object) -> float:
        """Take one token: 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(tenant)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._buckets.popitem(last=False)
            bucket = [self._burst, now]
            self._buckets[tenant] = bucket
        else:
            self._buckets.move_to_end(tenant)
            tokens = bucket[0] + (now - bucket[1]) * self._rate
            bucket[0] = tokens if tokens < self._burst else self._burst
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        return (1.0 - bucket[0]) / self._rate
