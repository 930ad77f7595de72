"""In-memory token buckets, one per key (an email, a client address), bounded in number.

Each key gets ``burst`` tokens, refilled at ``per_minute``.  Callers peek
first (:meth:`TokenBuckets.retry_after`), then take a token for the attempt
and may give it back when the attempt turns out not to count (a successful
login, a dependency outage).  Peeking at a key that has no bucket creates
none: a bucket exists only for keys that spent a token, so a stream of
well-behaved clients costs nothing.

Per replica: with N replicas a key gets up to N times the budget.  The number
of tracked keys is capped (least recently used go first, and a dropped
bucket comes back full, which only ever errs towards accepting), so a flood
of distinct keys cannot exhaust memory.  The clock is injectable for tests.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(
        self, *, burst: int, per_minute: float, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refill(self, key: str) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            now = self._clock()
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def retry_after(self, key: str) -> float:
        """Seconds until one token is available; 0 when one is available now."""
        bucket = self._refill(key)
        if bucket is None or bucket.tokens >= 1.0:
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def take(self, key: str) -> None:
        bucket = self._refill(key)
        if bucket is None:
            bucket = _Bucket(tokens=self.burst, updated=self._clock())
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        bucket.tokens -= 1.0

    def give_back(self, key: str) -> None:
        bucket = self._refill(key)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + 1.0)
