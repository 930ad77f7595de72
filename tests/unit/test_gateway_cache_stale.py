"""The webhook look-up cache while Postgres is away: stale within the window, never past it or an invalidation."""

from __future__ import annotations

import asyncio
import functools
import uuid

import asyncpg
import pytest

from services.gateway.hooks.cache import WebhookTarget, WorkflowCache
from tests.helpers.fake_clock import ManualClock


class Database:
    """A loader over an in-memory table that can be switched off like a stopped Postgres."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, WebhookTarget] = {}
        self.error: BaseException | None = None
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def load(self, workflow_id: uuid.UUID) -> WebhookTarget | None:
        self.calls += 1
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


async def test_nothing_is_served_past_the_stale_window():
    cache, db, clock, wid, target = setup(stale=30)
    await cache.get(wid)
    db.error = asyncpg.ConnectionDoesNotExistError("closed")
    clock.now += 5 + 29
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


async def test_zero_stale_seconds_turns_it_off():
    cache, db, clock, wid, _ = setup(stale=0)
    await cache.get(wid)
    clock.now += 6
    db.error = asyncpg.ConnectionDoesNotExistError("closed")
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await cache.get(wid)
