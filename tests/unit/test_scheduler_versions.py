"""Which version a slot fires with, the version-free dedup key, and the catch-up split (pure logic)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from libs.common.models.events import event_id_for, msg_id_for, schedule_dedup_key
from libs.common.models.workflows import ScheduleTrigger
from services.scheduler import versions
from services.scheduler.catchup import plan_catch_up
from services.scheduler.slots import IntervalRule, rule_for, to_slot
from services.scheduler.store import ScheduleSpec, VersionAtSlot
from services.scheduler.versions import Outcome

NOON = to_slot(datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC))  # a multiple of 60, 120 and 3600
MIN_INTERVAL = 10  # the default of IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS


def decide(held: ScheduleSpec, slot: int, found: VersionAtSlot | None) -> tuple[int | None, Outcome]:
    return versions.decide(held, slot, found, min_interval_seconds=MIN_INTERVAL)


def is_slot_of(trigger: Any, slot: int) -> bool:
    return versions.is_slot_of(trigger, slot, min_interval_seconds=MIN_INTERVAL)


def spec(version: int, **trigger: Any) -> ScheduleSpec:
    parsed = ScheduleTrigger.model_validate({"type": "schedule", **trigger})
    return ScheduleSpec(uuid.uuid4(), uuid.uuid4(), version, parsed, rule_for(parsed), effective_from=0)


def test_the_dedup_key_names_workflow_and_slot_only() -> None:
    wf = uuid.uuid4()
    key = schedule_dedup_key(wf, "2026-05-01T12:00:00Z")
    assert key == f"sched:{wf}:2026-05-01T12:00:00Z"
    assert msg_id_for(wf, key) == key  # used as is, never scoped again
    # Whatever version a replica holds, the slot maps onto one event id.
    assert event_id_for(wf, key) == event_id_for(str(wf), schedule_dedup_key(str(wf), "2026-05-01T12:00:00Z"))


def test_the_held_version_fires_when_it_is_current_at_the_slot_or_nothing_older_is_known() -> None:
    held = spec(3, interval_seconds=60)
    assert decide(held, NOON, VersionAtSlot(3, {"type": "schedule", "interval_seconds": 60})) == (3, "held")
    assert decide(held, NOON, None) == (3, "held")  # no version created by then (clocks apart)


def test_a_stale_replica_fires_with_the_version_current_at_the_slot() -> None:
    held = spec(1, interval_seconds=60)
    newer = VersionAtSlot(2, {"type": "schedule", "cron": "0 * * * *", "timezone": "UTC"})
    assert decide(held, NOON, newer) == (2, "changed")
    # A replica that loaded v2 early still fires a slot before v2's creation with v1.
    early = spec(2, interval_seconds=60)
    assert decide(early, NOON, VersionAtSlot(1, {"type": "schedule", "interval_seconds": 60})) == (1, "changed")


@pytest.mark.parametrize(
    ("trigger", "slot"),
    [
        ({"type": "schedule", "interval_seconds": 120}, NOON + 60),  # another cadence: not one of its slots
        ({"type": "webhook"}, NOON + 60),  # no longer a schedule
        ({"type": "schedule", "cron": "61 * * * *"}, NOON + 60),  # stored broken
        (None, NOON + 60),
        # Firing more often than the minimum: its slots do not fire (though NOON is one of them).
        ({"type": "schedule", "interval_seconds": 5}, NOON),
        ({"type": "schedule", "cron": "*/5 * * * * *", "timezone": "UTC"}, NOON),  # seconds first
    ],
)
def test_a_slot_that_is_not_a_slot_of_the_version_current_then_does_not_fire(trigger: Any, slot: int) -> None:
    held = spec(1, interval_seconds=60)
    if slot == NOON:
        assert versions.is_slot_of(trigger, NOON, min_interval_seconds=1)
    assert decide(held, slot, VersionAtSlot(2, trigger)) == (None, "not_a_slot")


def test_is_slot_of_reads_cron_and_interval_triggers() -> None:
    assert is_slot_of({"type": "schedule", "interval_seconds": 120}, NOON)
    assert not is_slot_of({"type": "schedule", "interval_seconds": 120}, NOON + 60)
    paris_nine = {"type": "schedule", "cron": "0 9 * * *", "timezone": "Europe/Paris"}
    assert is_slot_of(paris_nine, to_slot(datetime(2026, 5, 1, 7, 0, tzinfo=UTC)))  # 09:00 CEST
    assert not is_slot_of(paris_nine, to_slot(datetime(2026, 5, 1, 9, 0, tzinfo=UTC)))


def test_catch_up_skip_fires_the_latest_and_the_recent_and_records_the_rest() -> None:
    rule = IntervalRule(60)
    now = NOON + 5 * 60 + 2
    plan = plan_catch_up(rule, "skip", NOON, now, window_seconds=86_400, max_slots=1000, grace_seconds=5)
    assert plan.fire == [NOON + 300] and plan.skipped == [NOON + s for s in (60, 120, 180, 240)]
    every = plan_catch_up(rule, "all", NOON, now, window_seconds=86_400, max_slots=1000, grace_seconds=5)
    assert every.fire == [NOON + s for s in (60, 120, 180, 240, 300)] and every.skipped == []
    # A long grace fires them all; the window and the cap bound what is considered.
    patient = plan_catch_up(rule, "skip", NOON, now, window_seconds=86_400, max_slots=1000, grace_seconds=600)
    assert patient.skipped == []
    capped = plan_catch_up(rule, "all", NOON, now, window_seconds=150, max_slots=1000, grace_seconds=5)
    assert capped.fire == [NOON + 180, NOON + 240, NOON + 300] and capped.beyond_window
    limited = plan_catch_up(rule, "all", NOON, now, window_seconds=86_400, max_slots=2, grace_seconds=5)
    assert limited.fire == [NOON + 240, NOON + 300] and limited.dropped == 3 and limited.complete
