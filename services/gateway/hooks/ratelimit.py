"""A token bucket per tenant, in memory, per replica: each replica's share of the tenant's limit.

The buckets are :class:`libs.common.ratelimit.TokenBuckets` (bounded, least
recently used dropped first).  The tenant's limit is divided by the number of
gateway replicas, so N replicas together accept at most the tenant's rate
times the time, plus its burst, and no request waits on a shared store.  That
holds for any spread of the traffic; the tenant gets its whole rate when the
load balancer spreads its requests evenly (per request, as an ingress does),
less when they pile on one replica (a sender pinned to one connection behind
an L4 balancer).  Why not a shared bucket: see docs/gateway.md ("Rate limit").
"""

from __future__ import annotations

import time
from collections.abc import Callable

from libs.common.ratelimit import TokenBuckets


class TenantRateLimiter(TokenBuckets):
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
        """One replica's share of a tenant's limit: ``rate / replicas`` a second, ``burst / replicas`` (min 1)."""
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        return cls(burst=max(1.0, burst / replicas), per_minute=rate * 60 / replicas, max_keys=max_tenants, clock=clock)
