"""Admission per tenant: work-conserving alone, equal shares under contention, no waiting in a slot."""

from __future__ import annotations

import asyncio
from collections import Counter

from services.executor.fairness import TenantSlots, tenant_of
from tests.helpers.fake_clock import ManualClock


async def admitted(slots: TenantSlots, tenant: str, n: int, **options: int) -> list[int]:
    """The tokens of ``n`` of ``tenant``'s events acquired one after another: each one must get a slot."""
    tokens = [await slots.acquire(tenant, **options) for _ in range(n)]
    assert None not in tokens, tokens
    return [t for t in tokens if t is not None]


async def waits_for_its_slot(slots: TenantSlots, held: int, **options: int) -> None:
    """A's next event waits for a slot of its own, and runs once A's ``held`` token is released."""
    waiter = asyncio.create_task(slots.acquire("A", **options))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    slots.release("A", held)
    assert await asyncio.wait_for(waiter, 1) is not None


def test_tenant_is_read_from_the_subject():
    assert tenant_of("events.t1.w1") == "t1"
    assert tenant_of("garbage") == ""


async def test_a_lone_tenant_uses_every_slot_but_the_headroom():
    slots = TenantSlots(10, headroom=2, patience=0)
    await admitted(slots, "A", 8)
    assert await slots.acquire("A") is None  # over the usable slots: parked, not held


async def test_contended_slots_are_shared_equally_and_over_share_events_park_at_once():
    slots = TenantSlots(10, headroom=0, patience=5.0)
    await admitted(slots, "A", 8)
    slots.set_waiting(frozenset({"A", "B"}))  # B has events waiting in the stream
    assert slots.cap("A") == 5 and slots.cap("B") == 5
    assert await slots.acquire("A") is None  # no waiting while another tenant is waiting
    await admitted(slots, "B", 2)
    assert slots.running("B") == 2


async def test_a_quick_tenant_over_its_cap_waits_for_its_own_slot():
    clock = ManualClock(100.0)
    slots = TenantSlots(2, headroom=0, patience=1.0, clock=clock)
    first, _ = await admitted(slots, "A", 2)
    await waits_for_its_slot(slots, first)
    assert slots.running("A") == 2


async def test_a_slow_tenant_over_its_cap_is_parked_at_once():
    clock = ManualClock(100.0)
    slots = TenantSlots(3, headroom=1, patience=1.0, clock=clock)
    await admitted(slots, "A", 2)
    clock.now += 1.5  # A's oldest running event started 1.5 s ago: its work is slow
    assert slots.is_slow("A")
    assert await slots.acquire("A") is None
    # Another tenant's event, fetched into the headroom past A's backlog, runs at once.
    assert await slots.acquire("B") is not None


async def test_a_wait_that_outlasts_the_patience_parks():
    slots = TenantSlots(1, headroom=0, patience=0.05)
    await slots.acquire("A")
    assert await slots.acquire("A") is None
    assert slots.running("A") == 1


async def test_release_of_an_unknown_token_changes_nothing():
    slots = TenantSlots(2, headroom=0, patience=0)
    [token] = await admitted(slots, "A", 1)
    slots.release("A", token + 100)
    slots.release("B", token)
    assert slots.running("A") == 1
    slots.release("A", token)
    assert slots.running("A") == 0


def _contended(waiting: str) -> tuple[TenantSlots, ManualClock]:
    """256 slots (25 of them headroom), the events of each tenant named in ``waiting`` waiting in the stream."""
    clock = ManualClock()
    slots = TenantSlots(256, headroom=25, patience=0, clock=clock)
    slots.set_waiting(frozenset(waiting))
    return slots, clock


async def _admit_in_turn(slots: TenantSlots, clock: ManualClock, order: str, events: int) -> Counter[str]:
    """``events`` events, a millisecond apart, of the tenants of ``order`` in turn, each with a backlog behind it;
    quick work: a few in flight per tenant.  How many of each tenant's were parked."""
    parked: Counter[str] = Counter()
    held: list[tuple[str, int]] = []
    for i in range(events):
        tenant = order[i % len(order)]
        clock.now += 0.001
        token = await slots.acquire(tenant, behind=10_000)
        if token is None:
            parked[tenant] += 1
        else:
            held.append((tenant, token))
        if len(held) > 20:
            slots.release(*held.pop(0))
    return parked


async def test_equal_rates_never_park_each_other_with_a_backlog():
    slots, clock = _contended("AB")
    # Equal counts, runs of up to four.
    assert await _admit_in_turn(slots, clock, "ABBAAABBABBBAABAAABBBB", 2000) == Counter()


async def test_a_tenant_far_over_its_share_parks_while_a_backlog_waits():
    slots, clock = _contended("AB")  # B's events wait behind A's in the stream
    await admitted(slots, "A", 1, behind=10_000)
    for _ in range(50):
        clock.now += 0.001
        token = await slots.acquire("A", behind=10_000)
        if token is None:
            break
    assert token is None  # A took every recent admission: its event is parked so the consumer reaches B's
    assert slots.over_share("A", behind=10_000)
    assert await slots.acquire("B", behind=10_000) is not None


async def test_without_a_backlog_behind_it_an_event_is_not_parked_for_its_share():
    slots, clock = _contended("AB")
    for _ in range(50):
        clock.now += 0.001
        assert await slots.acquire("A", behind=3) is not None  # B's events are a moment away anyway
    assert slots.over_share("A", behind=10_000)  # the same share with a backlog behind it is over
    assert not slots.over_share("A", behind=3)
    assert not slots.over_share("A", behind=230)
    assert slots.over_share("A", behind=231)  # 256 - 25 usable slots: a backlog this replica cannot take at once


async def test_two_equal_tenants_are_parked_for_a_starved_third():
    slots, clock = _contended("ABC")  # C's events wait behind A's and B's backlog
    parked = await _admit_in_turn(slots, clock, "AB", 200)
    assert parked["A"] > 50 and parked["B"] > 50
    assert await slots.acquire("C", behind=10_000) is not None


async def test_quick_work_over_its_cap_waits_for_its_slot_under_contention():
    slots = TenantSlots(4, headroom=0, patience=5.0)
    slots.set_waiting(frozenset({"A", "B"}))
    await admitted(slots, "B", 1, behind=0)
    first, _ = await admitted(slots, "A", 2, behind=0)
    assert slots.cap("A") == 2
    await waits_for_its_slot(slots, first, behind=0)  # over its cap, not over its share: it waits
