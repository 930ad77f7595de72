"""Slot math: time zones, DST nights, interval anchoring, missed-slot enumeration (no waiting)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from libs.common.models.workflows import ScheduleTrigger
from services.scheduler.slots import (
    NEXT_CACHE,
    CronRule,
    IntervalRule,
    SlotError,
    rule_for,
    slot_iso,
    slots_between,
    to_slot,
)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return to_slot(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


def _fires(rule: CronRule | IntervalRule, start: int, end: int) -> list[str]:
    slots, dropped, complete = slots_between(rule, start, end, 10_000)
    assert dropped == 0 and complete
    return [slot_iso(s) for s in slots]


def test_paris_nine_am_follows_the_paris_offset_in_summer_and_winter() -> None:
    # Paris is UTC+2 in summer (CEST) and UTC+1 in winter (CET): 09:00 local is 07:00 / 08:00 UTC.
    rule = CronRule("0 9 * * *", "Europe/Paris")
    assert slot_iso(rule.next_after(_utc(2026, 7, 14, 0, 0))) == "2026-07-14T07:00:00Z"
    assert slot_iso(rule.next_after(_utc(2026, 1, 15, 0, 0))) == "2026-01-15T08:00:00Z"
    # The same expression in London (UTC+1 / UTC+0) moves by the same hour.
    london = CronRule("0 9 * * *", "Europe/London")
    assert slot_iso(london.next_after(_utc(2026, 7, 14, 0, 0))) == "2026-07-14T08:00:00Z"
    assert slot_iso(london.next_after(_utc(2026, 1, 15, 0, 0))) == "2026-01-15T09:00:00Z"


def test_nine_am_fires_once_across_the_spring_forward_and_the_fall_back_nights() -> None:
    rule = CronRule("0 9 * * *", "Europe/Paris")
    # Paris moves from 02:00 CET to 03:00 CEST on 2026-03-29 (01:00 UTC).
    fires = _fires(rule, _utc(2026, 3, 28, 0, 0), _utc(2026, 3, 30, 23, 0))
    assert fires == ["2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"]
    # Paris moves from 03:00 CEST back to 02:00 CET on 2026-10-25 (01:00 UTC).
    fires = _fires(rule, _utc(2026, 10, 24, 0, 0), _utc(2026, 10, 26, 23, 0))
    assert fires == ["2026-10-24T07:00:00Z", "2026-10-25T08:00:00Z", "2026-10-26T08:00:00Z"]


def test_a_0230_job_fires_at_0300_local_on_the_spring_forward_day_and_once_on_the_fall_back_day() -> None:
    rule = CronRule("30 2 * * *", "Europe/Paris")
    fires = _fires(rule, _utc(2026, 3, 28, 0, 0), _utc(2026, 3, 30, 23, 0))
    # 02:30 CET (01:30 UTC), then the gap: fires at 03:00 CEST (01:00 UTC), then 02:30 CEST (00:30 UTC).
    assert fires == ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    fires = _fires(rule, _utc(2026, 10, 24, 12, 0), _utc(2026, 10, 25, 12, 0))
    assert fires == ["2026-10-25T00:30:00Z"]  # 02:30 CEST; the second 02:30 (CET, 01:30 UTC) does not fire


def test_gap_times_collapse_onto_one_fire_at_the_end_of_the_gap() -> None:
    rule = CronRule("*/20 * * * *", "Europe/Paris")
    fires = _fires(rule, _utc(2026, 3, 29, 0, 30), _utc(2026, 3, 29, 1, 30))
    # 01:40 CET, then 02:00/02:20/02:40 do not exist: one fire at 03:00 CEST, then 03:20 CEST.
    assert fires == ["2026-03-29T00:40:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:20:00Z"]


def test_next_after_from_inside_the_repeated_hour_moves_forward() -> None:
    rule = CronRule("*/20 * * * *", "Europe/Paris")
    # 01:10 UTC is 02:10 CET, the second pass of 02:xx: the next fire is 03:00 CET.
    assert slot_iso(rule.next_after(_utc(2026, 10, 25, 1, 10))) == "2026-10-25T02:00:00Z"


def test_six_field_cron_puts_seconds_first() -> None:
    rule = CronRule("*/15 * * * * *", "UTC")
    assert _fires(rule, _utc(2026, 5, 1, 12, 0), _utc(2026, 5, 1, 12, 0) + 45) == [
        "2026-05-01T12:00:15Z",
        "2026-05-01T12:00:30Z",
        "2026-05-01T12:00:45Z",
    ]


def test_interval_slots_are_anchored_to_the_epoch_so_replicas_agree() -> None:
    rule = IntervalRule(300)
    a = rule.next_after(_utc(2026, 5, 1, 12, 1, 7))
    b = rule.next_after(_utc(2026, 5, 1, 12, 4, 59))
    assert slot_iso(a) == slot_iso(b) == "2026-05-01T12:05:00Z"
    assert rule.next_after(a) == a + 300


def test_slot_iso_is_one_canonical_utc_form() -> None:
    assert slot_iso(_utc(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"


def test_slots_between_keeps_the_newest_and_counts_the_dropped() -> None:
    start = _utc(2026, 5, 1)
    slots, dropped, complete = slots_between(IntervalRule(60), start, start + 600, 3)
    assert [s - start for s in slots] == [480, 540, 600] and dropped == 7 and complete
    slots, dropped, complete = slots_between(CronRule("* * * * *", "UTC"), start, start + 600, 3)
    assert [s - start for s in slots] == [480, 540, 600] and dropped >= 0
    slots, dropped, complete = slots_between(CronRule("* * * * *", "UTC"), start, start + 600, 30)
    assert len(slots) == 10 and slots[-1] == start + 600 and dropped == 0 and complete


def test_slots_between_stays_cheap_for_a_day_of_per_second_slots() -> None:
    until = _utc(2026, 5, 2)
    began = time.perf_counter()
    slots, _, complete = slots_between(CronRule("* * * * * *", "Europe/Paris"), until - 86_400, until, 1000)
    assert time.perf_counter() - began < 0.5
    assert len(slots) == 1000 and slots[-1] == until and not complete


def test_a_cron_that_never_fires_is_an_error_not_a_hang() -> None:
    with pytest.raises(SlotError):
        CronRule("0 0 31 2 *", "UTC").next_after(_utc(2026, 1, 1))


def test_rule_for_picks_interval_or_cron() -> None:
    assert isinstance(rule_for(ScheduleTrigger(type="schedule", interval_seconds=5)), IntervalRule)
    assert isinstance(rule_for(ScheduleTrigger(type="schedule", cron="0 9 * * *", timezone="Asia/Tokyo")), CronRule)


def test_schedules_with_the_same_cron_and_zone_share_one_rule_and_its_answers() -> None:
    every_minute = ScheduleTrigger.model_validate({"type": "schedule", "cron": "* * * * *", "timezone": "UTC"})
    same = ScheduleTrigger.model_validate({"type": "schedule", "cron": "* * * * *", "timezone": "UTC"})
    paris = ScheduleTrigger.model_validate({"type": "schedule", "cron": "* * * * *", "timezone": "Europe/Paris"})
    rule = rule_for(every_minute)
    assert rule is rule_for(same)
    assert rule is not rule_for(paris)
    start = 1_800_000_000  # a multiple of 60
    # The remembered answers stay right past the memo's size (it is cleared, not trusted blindly).
    for after in range(start, start + 3 * NEXT_CACHE):
        assert rule.next_after(after) == (after // 60 + 1) * 60
    assert rule.next_after(start) == start + 60
