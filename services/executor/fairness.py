"""Per-tenant admission on one replica: work-conserving, fair under contention, and no waiting in a slot.

A replica holds at most ``max_in_flight`` messages (the consumer's bound);
``headroom`` of them are never used to run events, so the consumer can always
look past a backlog.  Of the rest (the usable slots):

- while no other tenant has events waiting in the stream, a tenant may use
  every usable slot the others are not using (work-conserving: a lone tenant
  runs at full speed);
- while other tenants have events waiting, each tenant may run an equal
  share, ``usable // n`` for the ``n`` tenants running here or waiting.

Which tenants have events waiting comes from JetStream's per-subject counts
of EVENTS (see :class:`BacklogView`), refreshed while the replica is busy.

Slots bound how much slow work a tenant holds; quick work rarely fills
them, so under contention each tenant's share of recent admissions counts
too.  In a single FIFO stream another tenant's events sit behind the busy
tenant's backlog; parking the busy tenant's over-share events is how the
consumer reaches them.  That only helps while someone is actually held
back, so a tenant is over its share (:meth:`TenantSlots.over_share`) when
all of these hold:

- other tenants have events waiting (contention, as above);
- the consumer has at least ``usable`` messages not yet delivered behind
  this one (``behind``, from the message's ``num_pending``): with fewer,
  the others' events are a moment away and parking only delays this one;
- the tenant took more than an equal share (``1 / n``) of recent admissions
  (admissions decay with a half-life of ``RATE_HALF_LIFE_SECONDS``);
- another tenant with events waiting is starved: it took less than
  ``STARVED_FRACTION`` of an equal share.

Parking is never cheap for the parked event (a deferral waits
``fairness_delay_seconds`` or more, doubling), so tenants whose events
already interleave in the stream must not park each other.  Without the
last two conditions the ordinary jitter of two equal rates put each tenant
"over" about half of the time, and a healthy tenant's events were parked
again and again (1 + 2 + 4 + 8 s ...) next to a neighbour whose retries kept
the consumer busy.

An event over its tenant's share, or over its tenant's cap while its
tenant's work is slow (its oldest running event started ``patience``
seconds ago or more), is parked outside the consumer at once
(:meth:`TenantSlots.acquire` returns ``None``).  An event merely over its
tenant's cap, of quick work, waits up to ``patience`` for one of its
tenant's slots, which quick work frees within moments; past that it is
parked.  Waiting work therefore never holds capacity another tenant needs
for longer than ``patience``, and slow work never waits in a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from libs.common.bus import Bus

log = logging.getLogger(__name__)

RATE_HALF_LIFE_SECONDS = 1.0
# Starved: a tenant with events waiting that took less than this fraction of an equal share of admissions.
STARVED_FRACTION = 0.5


def tenant_of(subject: str) -> str:
    """``events.<tenant>.<workflow>`` -> ``<tenant>`` (decided before the body is parsed)."""
    parts = subject.split(".", 2)
    return parts[1] if len(parts) >= 2 else ""


class _Tenant:
    __slots__ = ("running", "waiters")

    def __init__(self) -> None:
        self.running: OrderedDict[int, float] = OrderedDict()  # token -> start time, oldest first
        self.waiters: deque[asyncio.Future[int]] = deque()


class _Decaying:
    """A count that halves every ``RATE_HALF_LIFE_SECONDS``, updated and read in O(1)."""

    __slots__ = ("at", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.at = 0.0

    def read(self, now: float) -> float:
        if self.value and now > self.at:
            self.value *= 0.5 ** ((now - self.at) / RATE_HALF_LIFE_SECONDS)
        self.at = now
        return self.value

    def add(self, now: float) -> None:
        self.value = self.read(now) + 1.0


class TenantSlots:
    def __init__(
        self, max_in_flight: int, *, headroom: int, patience: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._usable = max(1, max_in_flight - max(0, headroom))
        self._patience = patience
        self._clock = clock
        self._tenants: dict[str, _Tenant] = {}
        self._running = 0
        self._waiting: frozenset[str] = frozenset()
        self._next_token = 0
        self._admitted: dict[str, _Decaying] = {}
        self._admitted_total = _Decaying()

    def set_waiting(self, tenants: frozenset[str]) -> None:
        """Tenants that have events waiting in the stream (from :class:`BacklogView`)."""
        self._waiting = tenants
        self._wake_all()

    def contended(self, tenant: str) -> bool:
        """Another tenant has events waiting in the stream."""
        waiting = self._waiting
        return len(waiting) > 1 or (len(waiting) == 1 and tenant not in waiting)

    def cap(self, tenant: str) -> int:
        """How many events ``tenant`` may run now."""
        mine = self.running(tenant)
        if not self.contended(tenant):
            return max(1, self._usable - (self._running - mine))
        active = len(self._waiting | self._tenants.keys() | {tenant})
        return max(1, self._usable // active)

    def over_share(self, tenant: str, behind: int | None = None) -> bool:
        """Parking ``tenant``'s event would let a starved tenant's events be reached (see the module's notes).

        ``behind``: messages the consumer has not delivered yet (``None``: unknown, taken as a backlog).
        """
        if not self.contended(tenant) or self.running(tenant) == 0:
            return False
        if behind is not None and behind < self._usable:
            return False  # nothing much waits behind this event: parking it would reach no one sooner
        now = self._clock()
        share = self._admitted_total.read(now) / len(self._waiting | self._tenants.keys() | {tenant})
        if self._admitted_now(tenant, now) <= share + 1.0:  # none admitted yet: 0, never over
            return False
        starved = share * STARVED_FRACTION
        return any(self._admitted_now(other, now) < starved for other in self._waiting if other != tenant)

    def _admitted_now(self, tenant: str, now: float) -> float:
        admitted = self._admitted.get(tenant)
        return 0.0 if admitted is None else admitted.read(now)

    def running(self, tenant: str) -> int:
        t = self._tenants.get(tenant)
        return 0 if t is None else len(t.running)

    def is_slow(self, tenant: str) -> bool:
        t = self._tenants.get(tenant)
        if t is None or not t.running:
            return False
        oldest = next(iter(t.running.values()))
        return self._clock() - oldest >= self._patience

    async def acquire(self, tenant: str, behind: int | None = None) -> int | None:
        """A slot token for ``tenant``, or ``None`` when the event should be parked instead.

        ``behind``: how many messages the consumer still has to deliver after this one (see :meth:`over_share`).
        """
        t = self._tenants.get(tenant)
        if t is None:
            t = self._tenants[tenant] = _Tenant()
        if len(t.running) < self.cap(tenant) and not self.over_share(tenant, behind):
            return self._take(t, tenant)
        if self._patience <= 0 or self.is_slow(tenant) or self.over_share(tenant, behind):
            self._forget_if_idle(tenant, t)
            return None
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        t.waiters.append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout=self._patience)
        except TimeoutError:
            if fut.done() and not fut.cancelled():
                return fut.result()  # granted just as the wait ran out
            self._withdraw(tenant, t, fut)
            return None
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(tenant, fut.result())
            else:
                self._withdraw(tenant, t, fut)
            raise

    def release(self, tenant: str, token: int) -> None:
        t = self._tenants.get(tenant)
        if t is None or t.running.pop(token, None) is None:
            return
        self._running -= 1
        self._wake(tenant, t)
        self._forget_if_idle(tenant, t)
        if len(self._tenants) > 1:
            self._wake_all()

    def _take(self, t: _Tenant, name: str) -> int:
        now = self._clock()
        self._next_token += 1
        t.running[self._next_token] = now
        self._running += 1
        admitted = self._admitted.get(name)
        if admitted is None:
            if len(self._admitted) > 4 * max(16, len(self._tenants)):
                self._admitted = {k: v for k, v in self._admitted.items() if v.read(now) >= 0.01}
            admitted = self._admitted[name] = _Decaying()
        admitted.add(now)
        self._admitted_total.add(now)
        return self._next_token

    def _wake(self, name: str, t: _Tenant) -> None:
        while t.waiters and len(t.running) < self.cap(name):
            fut = t.waiters.popleft()
            if not fut.done():
                fut.set_result(self._take(t, name))

    def _wake_all(self) -> None:
        for name, t in list(self._tenants.items()):
            if t.waiters:
                self._wake(name, t)

    def _withdraw(self, name: str, t: _Tenant, fut: asyncio.Future[int]) -> None:
        fut.cancel()
        with contextlib.suppress(ValueError):
            t.waiters.remove(fut)
        self._forget_if_idle(name, t)

    def _forget_if_idle(self, name: str, t: _Tenant) -> None:
        if not t.running and not t.waiters:
            self._tenants.pop(name, None)


class BacklogView:
    """Which tenants have events in EVENTS, from JetStream's per-subject counts.

    Read every ``interval`` seconds while this replica has work in flight (an
    idle replica has nothing to share).  The count of a subject includes events
    already delivered but not acked, so a tenant is "waiting" slightly longer
    than strictly true; that errs toward sharing.
    """

    def __init__(
        self, bus: Bus, slots: TenantSlots, *, stream: str, subjects: str, interval: float, busy: Callable[[], bool]
    ) -> None:
        self._bus, self._slots = bus, slots
        self._stream, self._subjects = stream, subjects
        self._interval = interval
        self._busy = busy

    async def run(self) -> None:
        while True:
            if self._busy():
                try:
                    await self.read_once()
                except Exception as exc:  # noqa: BLE001 - keep the last view until the next read
                    log.debug("backlog read failed", extra={"error": type(exc).__name__})
            elif self._slots.contended(""):
                self._slots.set_waiting(frozenset())
            await asyncio.sleep(self._interval)

    async def read_once(self) -> frozenset[str]:
        info = await self._bus.stream_info(self._stream, subjects_filter=self._subjects)
        tenants = frozenset(tenant_of(subject) for subject in (info.state.subjects or {}))
        self._slots.set_waiting(tenants)
        return tenants
