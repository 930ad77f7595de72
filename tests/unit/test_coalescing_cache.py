"""The coalescing cache: a cancelled shared load makes its waiters load again; the table is bounded."""

from __future__ import annotations

import asyncio

import pytest

from libs.common.cache import CoalescingCache


async def test_waiters_of_a_cancelled_load_load_again_and_share_that_load() -> None:
    calls: list[str] = []
    gate = asyncio.Event()

    async def loader(key: str) -> str:
        calls.append(key)
        await gate.wait()
        return key.upper()

    cache = CoalescingCache(loader, ttl=60, max_entries=10)
    leader = asyncio.create_task(cache.get("a"))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(cache.get("a")) for _ in range(5)]
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == ["A"] * 5
    assert leader.cancelled() and calls == ["a", "a"]
    assert await cache.get("a") == "A" and len(calls) == 2


async def test_errors_are_not_kept_and_the_table_is_bounded() -> None:
    calls: list[int] = []

    async def loader(key: int) -> int:
        calls.append(key)
        if key < 0:
            raise ValueError("no")
        return key

    cache = CoalescingCache(loader, ttl=60, max_entries=3)
    for _ in range(2):
        with pytest.raises(ValueError, match="no"):
            await cache.get(-1)
    assert calls == [-1, -1]  # an error is never kept
    assert [await cache.get(key) for key in range(10)] == list(range(10))
    assert len(cache) == 3 and cache.hits == 0
    assert await cache.get(9) == 9 and cache.hits == 1 and len(calls) == 12
