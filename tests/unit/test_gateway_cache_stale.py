"""The webhook look-up cache: warm entries and concurrent misses share one load, an invalidation is never lost,
and while Postgres is away entries are served stale within the window, never past it or an invalidation.

Under it, the coalescing cache: a cancelled shared load makes its waiters load again; the table is bounded.
"""

from __future__ import annotations

import asyncio
import functools
import uuid

import asyncpg
import pytest

from libs.common.cache import CoalescingCache
from services.gateway.hooks.cache import WebhookTarget, WorkflowCache
from tests.helpers.fake_clock import ManualClock


class Database:
    """A loader over an in-memory table that can be switched off like a stopped Postgres."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, WebhookTarget] = {}
        self.error: BaseException | None = None
        self.loads: list[uuid.UUID] = []
        self.gate: asyncio.Event | None = None

    @property
    def calls(self) -> int:
        return len(self.loads)

    async def load(self, workflow_id: uuid.UUID) -> WebhookTarget | None:
        self.loads.append(workflow_id)
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.rows.get(workflow_id)


def setup(stale: float = 60.0) -> tuple[WorkflowCache, Database, ManualClock, uuid.UUID, WebhookTarget]:
    db, clock, wid = Database(), ManualClock(), uuid.uuid4()
    target = WebhookTarget(wid, uuid.uuid4(), 1, b"k")
    db.rows[wid] = target
    cache = WorkflowCache(db.load, ttl=5, negative_ttl=1, max_entries=100, stale=stale, clock=clock)
    return cache, db, clock, wid, target


async def test_warm_entries_are_served_without_loading_and_misses_share_one_load():
    cache, db, clock, wid, target = setup()
    db.gate = asyncio.Event()
    waiters = [asyncio.create_task(cache.get(wid)) for _ in range(20)]
    await asyncio.sleep(0)
    db.gate.set()
    assert all(r is target for r in await asyncio.gather(*waiters))
    assert db.calls == 1
    assert await cache.get(wid) is target and db.calls == 1
    clock.now += 6
    assert await cache.get(wid) is target and db.calls == 2
    cache.invalidate(wid)
    await cache.get(wid)
    assert db.calls == 3
    unknown = uuid.uuid4()
    assert await cache.get(unknown) is None and await cache.get(unknown) is None
    assert db.loads.count(unknown) == 1  # negative entries are cached too
    clock.now += 1.5
    await cache.get(unknown)
    assert db.loads.count(unknown) == 2


async def test_an_invalidation_during_a_load_is_not_lost():
    cache, db, _, wid, target = setup()
    db.gate = asyncio.Event()
    task = asyncio.create_task(cache.get(wid))
    await asyncio.sleep(0)
    cache.invalidate(wid)  # the row changed while the old one was being read
    db.gate.set()
    await task
    assert await cache.get(wid) is target and db.calls == 2  # what that load read was not kept: loaded again


@pytest.mark.parametrize(
    "outage",
    [
        asyncpg.ConnectionDoesNotExistError("closed"),
        asyncpg.CannotConnectNowError("starting"),
        asyncpg.InterfaceError("connection is closed"),
    ],
)
async def test_expired_entries_are_served_stale_while_postgres_is_away(outage: BaseException):
    cache, db, clock, wid, target = setup()
    assert await cache.get(wid) is target
    db.error = outage
    clock.now += 6  # expired
    assert await cache.get(wid) is target
    assert cache.stale_served == 1 and db.calls == 2
    # Postgres is tried again for this id once per TTL, not on every request.
    for _ in range(50):
        assert await cache.get(wid) is target
    assert db.calls == 2
    clock.now += 5
    assert await cache.get(wid) is target and db.calls == 3
    # Back: a fresh load, stored with a fresh TTL.
    db.error = None
    db.rows[wid] = fresh = WebhookTarget(wid, target.tenant_id, 2, b"k2")
    clock.now += 5
    assert await cache.get(wid) is fresh and db.calls == 4


@pytest.mark.parametrize("stale", [30.0, 0.0])
async def test_nothing_is_served_past_the_stale_window(stale: float):
    """Zero stale seconds turns it off: an expired entry is never served."""
    cache, db, clock, wid, target = setup(stale=stale)
    await cache.get(wid)
    db.error = asyncpg.ConnectionDoesNotExistError("closed")
    clock.now += 5 + stale - 1
    if stale:
        assert await cache.get(wid) is target
    clock.now += 2
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await cache.get(wid)


async def test_a_miss_or_an_invalidated_entry_raises_and_other_errors_are_never_masked():
    cache, db, clock, wid, _ = setup()
    db.error = asyncpg.ConnectionDoesNotExistError("closed")
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await cache.get(uuid.uuid4())  # never seen: nothing to fall back on

    # The change feed said it changed, or the whole cache was dropped: the old answer must not come back.
    for forget in (functools.partial(cache.invalidate, wid), cache.clear):
        db.error = None
        await cache.get(wid)
        forget()
        db.error = asyncpg.ConnectionDoesNotExistError("closed")
        with pytest.raises(asyncpg.ConnectionDoesNotExistError):
            await cache.get(wid)

    db.error = None
    await cache.get(wid)
    clock.now += 6
    db.error = ValueError("a bug, not an outage")
    with pytest.raises(ValueError, match="a bug"):
        await cache.get(wid)


async def test_an_invalidation_during_the_failed_reload_wins():
    cache, db, clock, wid, _ = setup()
    await cache.get(wid)
    clock.now += 6
    db.error, db.gate = asyncpg.ConnectionDoesNotExistError("closed"), asyncio.Event()
    task = asyncio.create_task(cache.get(wid))
    await asyncio.sleep(0)
    cache.invalidate(wid)
    db.gate.set()
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await task


async def test_concurrent_requests_share_the_failed_reload_and_all_get_the_stale_entry():
    cache, db, clock, wid, target = setup()
    await cache.get(wid)
    clock.now += 6
    db.error, db.gate = asyncpg.AdminShutdownError("terminating connection"), asyncio.Event()
    waiters = [asyncio.create_task(cache.get(wid)) for _ in range(20)]
    await asyncio.sleep(0)
    db.gate.set()
    assert all(r is target for r in await asyncio.gather(*waiters))
    assert db.calls == 2


async def test_unknown_ids_stay_unknown_while_postgres_is_away():
    cache, db, clock, _, _ = setup()
    unknown = uuid.uuid4()
    assert await cache.get(unknown) is None
    clock.now += 2
    db.error = asyncpg.ConnectionDoesNotExistError("closed")
    assert await cache.get(unknown) is None


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
