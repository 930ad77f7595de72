"""An in-memory cache that coalesces concurrent misses: one load per key at a time, kept for a TTL.

- A fresh entry is served without loading; concurrent misses for one key
  share a single call of the loader (its result or its error).  If that call
  is cancelled, the callers waiting on it load again themselves.
- ``None`` is kept for ``negative_ttl`` (a key known not to exist), any other
  value for ``ttl``; a TTL of 0 keeps nothing.  At most ``max_entries`` are
  held: a new key drops the one stored longest ago.
- :meth:`CoalescingCache.invalidate` and :meth:`CoalescingCache.clear` drop
  entries at once, and a load that was running meanwhile is not stored (its
  answer may predate the change); its callers still get it.
- Stale fallback (``stale`` > 0): when a load fails with an error that
  :meth:`CoalescingCache.stale_when` (overridden) calls an outage, an expired
  entry is served for up to ``stale`` seconds past its TTL, and the loader is
  tried again for that key once per TTL, not on every call.
  :meth:`CoalescingCache.on_stale` is told each time.  Other errors, and a miss
  with nothing to fall back on, are raised.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from time import monotonic
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Abandoned(Exception):
    """The shared load was cancelled: its waiters load again."""


class CoalescingCache(Generic[K, V]):
    def __init__(
        self,
        loader: Callable[[K], Awaitable[V]],
        *,
        ttl: float,
        max_entries: int,
        negative_ttl: float | None = None,
        stale: float = 0.0,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self._loader = loader
        self._ttl = ttl
        self._negative_ttl = ttl if negative_ttl is None else negative_ttl
        self._stale_for = stale
        self._max = max_entries
        self._clock = clock
        # key -> (fresh until, usable stale until, value); times are the cache's clock.
        self._entries: OrderedDict[K, tuple[float, float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}
        self._generation = 0
        self._dropped: set[K] = set()  # invalidated while loading
        self.hits = self.misses = self.stale_served = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: K) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            self.hits += 1
            return entry[2]
        self.misses += 1
        pending = self._loading.get(key)
        if pending is None:
            return await self._load(key)
        try:
            return await asyncio.shield(pending)
        except _Abandoned:
            return await self.get(key)  # from the top: another waiter may have loaded it already

    async def _load(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = self._generation
        try:
            value = await self._loader(key)
        except BaseException as exc:
            self._loading.pop(key, None)
            self._dropped.discard(key)
            fallback = self._fallback(key, exc) if isinstance(exc, Exception) else None
            if fallback is None:
                future.set_exception(exc if isinstance(exc, Exception) else _Abandoned())
                future.exception()  # mark retrieved: waiters re-raise it themselves
                raise
            future.set_result(fallback[2])
            return fallback[2]
        self._loading.pop(key, None)
        future.set_result(value)
        if generation == self._generation and key not in self._dropped:
            self._store(key, value)
        self._dropped.discard(key)
        return value

    def _fallback(self, key: K, exc: Exception) -> tuple[float, float, V] | None:
        """The expired entry to serve while the source is away, if it is within its stale window."""
        if not self.stale_when(exc):
            return None
        entry = self._entries.get(key)  # read now: an invalidation during the load dropped it
        now = self._clock()
        if entry is None or entry[1] <= now:
            return None
        retry_in = self._ttl if entry[2] is not None else self._negative_ttl
        self._entries[key] = (min(now + retry_in, entry[1]), entry[1], entry[2])
        self.stale_served += 1
        self.on_stale(key, exc)
        return entry

    def stale_when(self, exc: Exception) -> bool:
        """Whether ``exc`` is an outage an expired entry may be served through (none, unless overridden)."""
        return False

    def on_stale(self, key: K, exc: Exception) -> None:
        """Called each time an expired entry is served because of ``exc``."""

    def _store(self, key: K, value: V) -> None:
        ttl = self._ttl if value is not None else self._negative_ttl
        if ttl <= 0:
            return
        if key not in self._entries and len(self._entries) >= self._max:
            self._entries.popitem(last=False)
        expires = self._clock() + ttl
        self._entries[key] = (expires, expires + self._stale_for, value)
        self._entries.move_to_end(key)

    def invalidate(self, key: K) -> None:
        self._entries.pop(key, None)
        if key in self._loading:
            self._dropped.add(key)

    def clear(self) -> None:
        self._entries.clear()
        self._generation += 1
