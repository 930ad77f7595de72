"""Missed slots: which to fire late and which to record as skipped, decided as a pure function.

The engine calls :func:`plan_catch_up` for the slots in ``(last, now]`` and
carries the answer out (queues, progress, skipped rows, logs, metrics).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from services.scheduler.slots import SlotRule, slots_between

SKIP_REASON = (
    "missed: no scheduler replica could fire it on time (all down, or NATS unreachable); "
    "catchup=skip fires only the latest missed slot"
)


class CatchUp(NamedTuple):
    fire: list[int]  # fire these, oldest first
    skipped: list[int]  # record these as skipped executions
    dropped: int  # left out beyond max_catchup_slots (a lower bound when not ``complete``)
    complete: bool
    beyond_window: bool  # some missed slots were older than the catch-up window


def plan_catch_up(
    rule: SlotRule,
    policy: Literal["skip", "all"],
    last: int,
    now: int,
    *,
    window_seconds: int,
    max_slots: int,
    grace_seconds: int,
) -> CatchUp:
    """The slots in ``(last, now]``, within the window and the cap, split per the catch-up policy.

    ``all`` fires every one.  ``skip`` fires the latest, and every slot younger than
    ``grace_seconds`` (another replica may be firing it right now; dedup makes that
    safe); the others are recorded as skipped.
    """
    window_start = now - window_seconds
    missed, dropped, complete = slots_between(rule, max(last, window_start), now, max_slots)
    if len(missed) <= 1 or policy == "all":
        return CatchUp(missed, [], dropped, complete, last < window_start)
    latest = missed[-1]
    recent = now - grace_seconds
    fire = [s for s in missed if s == latest or s >= recent]
    skipped = [s for s in missed if s != latest and s < recent]
    return CatchUp(fire, skipped, dropped, complete, last < window_start)
