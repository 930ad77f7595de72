"""The ingest path's event id text is exactly the documented UUIDv5 event id."""

from __future__ import annotations

import uuid

import pytest

from libs.common.models.events import event_id_for, event_id_text


@pytest.mark.parametrize(
    "key", ["msg_1", "", "ext:sched:x", "clé-ünïcode-✓", "k" * 256, "2eb60c713f5040b1959d5b55a378c093"]
)
def test_event_id_text_equals_the_uuid5_event_id(key: str) -> None:
    workflow = uuid.uuid4()
    assert event_id_text(workflow, key) == str(event_id_for(workflow, key))
    assert event_id_text(str(workflow), key) == str(event_id_for(workflow, key))
    parsed = uuid.UUID(event_id_text(workflow, key))
    assert parsed.version == 5 and parsed.variant == uuid.RFC_4122
