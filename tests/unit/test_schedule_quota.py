"""The shortest schedule interval: how often a trigger fires at its fastest, and who refuses what (pure logic)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from libs.common.models.workflows import ScheduleTrigger, shortest_gap_seconds, too_frequent
from libs.common.settings import ScheduleSettings
from services.scheduler.store import parse_row


def cron(expression: str) -> ScheduleTrigger:
    return ScheduleTrigger(type="schedule", cron=expression)


@pytest.mark.parametrize(
    ("expression", "gap"),
    [
        ("* * * * * *", 1),
        ("*/5 * * * * *", 5),
        ("0,5 * * * * *", 5),  # a list is as fast as its closest pair
        ("0,30 * * * * *", 30),
        ("0-59/7 * * * * *", 4),  # 56 -> 0 of the next minute
        ("55 59 23 * * *", 86_400),
        ("0,55 0,59 0,23 * * *", 5),  # 23:59:55 -> 00:00:00 across midnight
        ("5,10 0 0 * * *", 5),
        ("0 0-59/7 * * * *", 240),  # minute 56 -> minute 0 of the next hour
        ("* * * * *", 60),  # 5 fields fire on whole minutes
        ("0 * * * *", 3600),
        ("0 */2 * * *", 7200),
        ("0 0 L * *", 86_400),  # day fields only lengthen gaps
        ("0 0 1,15 * mon", 86_400),
    ],
)
def test_the_shortest_gap_of_a_cron_includes_seconds_and_the_wrap_at_midnight(expression: str, gap: int) -> None:
    assert shortest_gap_seconds(cron(expression)) == gap


def test_an_interval_is_its_own_gap_and_the_minimum_is_inclusive() -> None:
    assert shortest_gap_seconds(ScheduleTrigger(type="schedule", interval_seconds=9)) == 9
    assert too_frequent(ScheduleTrigger(type="schedule", interval_seconds=10), 10) is None
    reason = too_frequent(ScheduleTrigger(type="schedule", interval_seconds=9), 10)
    assert reason == "the schedule fires 9 s apart at its fastest; the shortest interval allowed is 10 s"
    assert too_frequent(cron("*/10 * * * * *"), 10) is None
    assert too_frequent(cron("*/5 * * * * *"), 10) is not None
    assert too_frequent(cron("* * * * *"), 300) is not None  # a raised minimum reaches 5-field crons too


def test_the_default_minimum_is_ten_seconds_and_it_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ScheduleSettings().min_interval_seconds == 10
    monkeypatch.setenv("IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS", "60")
    assert ScheduleSettings().min_interval_seconds == 60
    monkeypatch.setenv("IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS", "0")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        ScheduleSettings()


def _row(trigger: dict[str, Any]) -> dict[str, Any]:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    return {
        "id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "current_version": 1,
        "is_active": True,
        "deleted_at": None,
        "schedule_error": None,
        "updated_at": now,
        "version_created_at": now,
        "last_slot": None,
        "definition": {"name": "x", "trigger": trigger, "action": {}},
    }


def test_the_scheduler_refuses_a_stored_version_that_fires_too_often() -> None:
    fast = parse_row(_row({"type": "schedule", "cron": "*/2 * * * * *"}), min_interval_seconds=10)
    assert fast.spec is None
    assert fast.error == "the schedule fires 2 s apart at its fastest; the shortest interval allowed is 10 s"
    fine = parse_row(_row({"type": "schedule", "interval_seconds": 10}), min_interval_seconds=10)
    assert fine.error is None and fine.spec is not None
