"""A token bucket per tenant, in memory, per replica.

Each tenant gets ``burst`` tokens, refilled at ``rate`` per second.  The
table is bounded: when it is full, the bucket touched least recently is
dropped (a dropped bucket comes back full, which only ever errs towards
accepting).  The clock is injectable for tests.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TenantRateLimiter:
    __slots__ = ("_buckets", "_burst", "_clock", "_max", "_rate")

    def __init__(self, rate: float, burst: float, *, max_tenants: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = burst
        self._max = max_tenants
        self._clock = clock
        # tenant -> [tokens, last refill time]
        self._buckets: OrderedDict[object, list[float]] = OrderedDict()

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
