import uuid

import pytest
from pydantic import ValidationError

from libs.common.models.events import event_id_for
from libs.common.models.workflows import WorkflowCreate


def test_event_id_is_deterministic_per_workflow_and_key() -> None:
    wf = uuid.uuid4()
    assert event_id_for(wf, "abc") == event_id_for(wf, "abc")
    assert event_id_for(wf, "abc") != event_id_for(uuid.uuid4(), "abc")


def test_workflow_rejects_unknown_fields_and_bad_cron() -> None:
    base = {
        "name": "n",
        "trigger": {"type": "webhook"},
        "action": {"type": "http_request", "config": {"url": "https://example.com"}},
    }
    assert WorkflowCreate.model_validate(base).is_active is True
    with pytest.raises(ValidationError):
        WorkflowCreate.model_validate({**base, "tenant_id": str(uuid.uuid4())})
    with pytest.raises(ValidationError):
        WorkflowCreate.model_validate({**base, "trigger": {"type": "schedule", "cron": "61 * * * *"}})
    with pytest.raises(ValidationError):
        WorkflowCreate.model_validate(
            {**base, "trigger": {"type": "schedule", "cron": "* * * * *", "timezone": "Mars/Olympus"}}
        )
