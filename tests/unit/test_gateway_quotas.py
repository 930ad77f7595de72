"""The gateway's quota checks and settings (pure logic); the same at the API is in
tests/integration/test_gateway_quotas.py."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from libs.common.models.workflows import WorkflowCreate
from libs.common.settings import ScheduleSettings
from services.gateway.quotas import QuotaExceeded, check_definition, check_schedule
from services.gateway.settings import GatewaySettings
from tests.helpers.gateway_app import slack_text


def workflow(trigger: dict[str, Any], text: str = "hi") -> WorkflowCreate:
    return WorkflowCreate.model_validate({**slack_text(text), "trigger": trigger})


def test_a_definition_is_checked_for_frequency_and_size() -> None:
    settings = GatewaySettings(definition_max_bytes=2048, page_max_bytes=4096)
    check_definition(workflow({"type": "schedule", "interval_seconds": 10}), settings)
    check_definition(workflow({"type": "webhook"}, "x" * 1800), settings)
    with pytest.raises(QuotaExceeded) as too_often:
        check_definition(workflow({"type": "schedule", "cron": "*/3 * * * * *"}), settings)
    assert too_often.value.status == 422 and too_often.value.code == "schedule_too_frequent"
    assert too_often.value.details[0]["field"] == "trigger.cron"
    with pytest.raises(QuotaExceeded) as too_big:
        check_definition(workflow({"type": "webhook"}, "x" * 2100), settings)
    assert too_big.value.code == "definition_too_large" and too_big.value.details["limit"] == 2048
    relaxed = GatewaySettings(schedule=ScheduleSettings(min_interval_seconds=1))
    check_definition(workflow({"type": "schedule", "cron": "* * * * * *"}), relaxed)


@pytest.mark.parametrize(
    "stored",
    [
        {"trigger": {"type": "webhook"}},
        {"trigger": {"type": "schedule", "cron": "61 * * * *"}},  # no longer parses: the scheduler reports it
        {"name": "no trigger"},
        None,
    ],
)
def test_a_stored_definition_is_refused_only_for_a_schedule_that_fires_too_often(stored: Any) -> None:
    check_schedule(stored, 10)
    with pytest.raises(QuotaExceeded, match="fires too often"):
        check_schedule({"trigger": {"type": "schedule", "interval_seconds": 2}}, 10)


def test_a_definition_may_not_be_larger_than_a_page() -> None:
    with pytest.raises(ValidationError, match="may not exceed IPAAS_GATEWAY_PAGE_MAX_BYTES"):
        GatewaySettings(definition_max_bytes=8192, page_max_bytes=4096)
    defaults = GatewaySettings()
    assert (
        defaults.max_workflows_per_tenant,
        defaults.definition_max_bytes,
        defaults.page_max_bytes,
        defaults.schedule.min_interval_seconds,
    ) == (1000, 262_144, 4_194_304, 10)
