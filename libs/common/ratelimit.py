"""In-memory token buckets, one per key (an email, a client address, a tenant), bounded in number.

Each key gets ``burst`` tokens, refilled at ``per_minute``.  Two ways to use
them: :meth:`TokenBuckets.acquire` takes a token when one is there and
otherwise says how long to wait (the gateway's per-tenant limit); or peek
first (:meth:`TokenBuckets.retry_after`), then take a token for the attempt
and maybe give it back when the attempt turns out not to count (a successful
login, a dependency outage).  Peeking at a key that has no bucket creates
none: a bucket exists only for keys that spent a token, so a stream of
well-behaved clients costs nothing.

Per replica: with N replicas a key gets up to N times the budget (unless each
replica is given its share, see :mod:`services.gateway.hooks.ratelimit`).  The
number of tracked keys is capped (least recently used go first, and a dropped
bucket comes back full, which only ever errs towards accepting), so a flood
of distinct keys cannot exhaust memory.  The clock is injectable for tests.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(
        self, *, burst: float, per_minute: float, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = float(burst)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refill(self, key: Hashable) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            now = self._clock()
            self._buckets.move_to_end(key)
            tokens = bucket.tokens + (now - bucket.updated) * self.rate
            bucket.tokens = tokens if tokens < self.burst else self.burst  # min() is slower on this hot path
            bucket.updated = now
        return bucket

    def _add(self, key: Hashable) -> _Bucket:
        bucket = self._buckets[key] = _Bucket(tokens=self.burst, updated=self._clock())
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return bucket

    def retry_after(self, key: Hashable) -> float:
        """Seconds until one token is available; 0 when one is available now."""
        bucket = self._refill(key)
        if bucket is None or bucket.tokens >= 1.0:
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def acquire(self, key: Hashable) -> float:
        """Take one token: 0.0 if there was one, else the seconds until there is (nothing taken)."""
        bucket = self._refill(key) or self._add(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def take(self, key: Hashable) -> None:
        """Spend a token for an attempt, even if there is none (the bucket goes below zero)."""
        (self._refill(key) or self._add(key)).tokens -= 1.0

    def give_back(self, key: Hashable) -> None:
        bucket = self._refill(key)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + 1.0)
