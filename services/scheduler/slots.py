"""Slot math: when a schedule fires, as whole UTC seconds since the epoch.

Rules (see docs/scheduler.md):

- Interval schedules are anchored to the Unix epoch: slot ``k`` is ``k * interval``
  seconds after 1970-01-01T00:00:00Z, so every replica computes the same slots.
- Cron schedules are matched against the local wall clock of their IANA zone.
  Each local wall-clock time fires at most once:
  * a time that does not exist (the spring-forward gap, e.g. 02:30 in Paris on
    the last Sunday of March) fires at the first instant after the gap
    (03:00 local);
  * a time that happens twice (the fall-back overlap) fires once, at its first
    occurrence.  A minute-by-minute schedule therefore pauses during the
    repeated hour; use ``interval_seconds`` (or the UTC zone) for a strictly
    elapsed-time cadence.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

from croniter import croniter

from libs.common.models.workflows import ScheduleTrigger, to_croniter_expression

# Bound on the candidates a single next-slot search may look at (a year of
# per-second matches inside a repeated hour is far below this).
MAX_CANDIDATES = 100_000
# Next-slot answers a cron rule remembers (its last few ``after`` values; cleared when full).
NEXT_CACHE = 256
# Distinct (cron, zone) rules kept for sharing between schedules.
SHARED_RULES = 4096


class SlotError(ValueError):
    """A schedule whose slots cannot be computed (e.g. a date that never occurs)."""


def slot_iso(slot: int) -> str:
    """The one canonical text form of a slot: ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return datetime.fromtimestamp(slot, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot_datetime(slot: int) -> datetime:
    return datetime.fromtimestamp(slot, UTC)


def to_slot(moment: datetime) -> int:
    """Whole seconds since the epoch, rounded down (``moment`` must be aware)."""
    return int(moment.timestamp() // 1)


class SlotRule(Protocol):
    def next_after(self, after: int) -> int:
        """The first slot strictly after ``after``."""
        ...


class IntervalRule:
    def __init__(self, interval_seconds: int) -> None:
        if interval_seconds < 1:
            raise SlotError("interval_seconds must be at least 1")
        self.interval = interval_seconds

    def next_after(self, after: int) -> int:
        return (after // self.interval + 1) * self.interval


class CronRule:
    """A cron expression in a zone.  Immutable but for a small memo of next-slot answers.

    Computing a cron slot costs about 0.1 ms; schedules with the same expression and
    zone share one rule (:func:`rule_for`), so ten thousand ``* * * * *`` schedules
    compute their next slot once per minute, not ten thousand times.
    """

    def __init__(self, cron: str, timezone: str) -> None:
        self.expression = to_croniter_expression(cron)
        if not croniter.is_valid(self.expression):
            raise SlotError(f"invalid cron expression: {cron!r}")
        try:
            self.zone = ZoneInfo(timezone)
        except (KeyError, ValueError) as exc:
            raise SlotError(f"unknown IANA time zone: {timezone!r}") from exc
        self._next: dict[int, int] = {}

    def next_after(self, after: int) -> int:
        found = self._next.get(after)
        if found is None:
            found = next(self.iter_after(after))
            if len(self._next) >= NEXT_CACHE:
                self._next.clear()
            self._next[after] = found
        return found

    def iter_after(self, after: int) -> Iterator[int]:
        """Slots strictly after ``after``, in increasing order, each once."""
        start = datetime.fromtimestamp(after, UTC).astimezone(self.zone).replace(tzinfo=None)
        last = after
        misses = 0
        try:
            it = croniter(self.expression, start)
            while True:
                wall: datetime = it.get_next(datetime)
                slot = resolve_wall_time(wall, self.zone)
                if slot > last:
                    misses = 0
                    last = slot
                    yield slot
                else:
                    misses += 1  # inside a repeated hour, or several gap times at one instant
                    if misses > MAX_CANDIDATES:
                        raise SlotError(f"cron expression {self.expression!r}: no slot found")
        except (ValueError, OverflowError) as exc:  # CroniterBadDateError is a ValueError
            if isinstance(exc, SlotError):
                raise
            raise SlotError(f"cron expression {self.expression!r} has no next time: {exc}") from exc


def resolve_wall_time(wall: datetime, zone: ZoneInfo) -> int:
    """The UTC second at which a naive local wall time fires, per the module rules."""
    first = wall.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == wall:
        return to_slot(utc)  # exists (fold=0 is the first occurrence when it is ambiguous)
    # In a gap: fold=1 reads it with the offset after the transition, which is
    # earlier in UTC; the transition instant lies between the two readings.
    lo = to_slot(wall.replace(tzinfo=zone, fold=1).astimezone(UTC))
    hi = to_slot(utc)
    if lo > hi:
        lo, hi = hi, lo
    before = datetime.fromtimestamp(lo, UTC).astimezone(zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi


def rule_for(trigger: ScheduleTrigger) -> SlotRule:
    if trigger.interval_seconds is not None:
        return IntervalRule(trigger.interval_seconds)
    if trigger.cron is None:
        raise SlotError("a schedule needs 'cron' or 'interval_seconds'")
    return shared_cron_rule(trigger.cron, trigger.timezone)


@lru_cache(maxsize=SHARED_RULES)
def shared_cron_rule(cron: str, timezone: str) -> CronRule:
    """One :class:`CronRule` per (expression, zone), shared by every schedule that uses it."""
    return CronRule(cron, timezone)


class Missed(NamedTuple):
    slots: list[int]  # the newest ``limit`` slots, oldest first
    dropped: int  # older slots left out (a lower bound when not ``complete``)
    complete: bool  # False when even older slots may exist that were not counted


def slots_between(rule: SlotRule, after: int, until: int, limit: int) -> Missed:
    """Slots in ``(after, until]``, at most the newest ``limit`` of them, in bounded work.

    Intervals are pure arithmetic.  Cron slots are enumerated over a look-back
    span that starts at ``limit`` seconds (slots are whole seconds apart, so it
    cannot hold more than ``limit``) and widens until it holds ``limit`` slots
    or reaches ``after``.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if isinstance(rule, IntervalRule):
        first = rule.next_after(after)
        if first > until:
            return Missed([], 0, True)
        total = (until - first) // rule.interval + 1
        kept = min(total, limit)
        start = first + (total - kept) * rule.interval
        return Missed([start + i * rule.interval for i in range(kept)], total - kept, True)
    span = limit
    while True:
        low = max(after, until - span)
        found: list[int] = []
        for slot in rule.iter_after(low) if isinstance(rule, CronRule) else _iterate(rule, low):
            if slot > until:
                break
            found.append(slot)
        if len(found) >= limit or low == after:
            break
        span *= 4
    kept_slots = found[-limit:]
    return Missed(kept_slots, len(found) - len(kept_slots), low == after)


def _iterate(rule: SlotRule, after: int) -> Iterator[int]:
    slot = after
    while True:
        slot = rule.next_after(slot)
        yield slot
