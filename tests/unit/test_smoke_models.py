import uuid

import pytest
from pydantic import ValidationError

from libs.common.models.events import event_id_for
from libs.common.models.workflows import WorkflowCreate
from tests.helpers.fakes import definition


def test_event_id_is_deterministic_per_workflow_and_key() -> None:
    wf = uuid.uuid4()
    assert event_id_for(wf, "abc") == event_id_for(wf, "abc")
    assert event_id_for(wf, "abc") != event_id_for(uuid.uuid4(), "abc")


def test_workflow_rejects_unknown_fields_and_bad_cron() -> None:
    base = definition("http_request", {"url": "https://example.com"}, name="n")
    assert WorkflowCreate.model_validate(base).is_active is True
    for bad in (
        {"tenant_id": str(uuid.uuid4())},
        {"trigger": {"type": "schedule", "cron": "61 * * * *"}},
        {"trigger": {"type": "schedule", "cron": "* * * * *", "timezone": "Mars/Olympus"}},
    ):
        with pytest.raises(ValidationError):
            WorkflowCreate.model_validate({**base, **bad})
