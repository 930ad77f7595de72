"""The new query and body rules of issue 13: time ranges, the bulk replay's filter, and key scopes by route."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from libs.common.auth import api_keys
from libs.common.models.api import DlqReplayRequest
from libs.common.models.queries import DeadLetterQuery, ExecutionQuery
from services.gateway.scopes import required_scope
from services.gateway.store.executions import like_pattern


@pytest.mark.parametrize(
    "text", ["2026-01-31T08:00:00Z", "2026-01-31t08:00:00.123456+05:30", "0001-01-01T00:00:00-12:00"]
)
def test_rfc3339_instants_with_an_offset_are_read(text: str) -> None:
    since = ExecutionQuery.model_validate({"since": text}).since
    assert since is not None and since.tzinfo is not None


@pytest.mark.parametrize(
    "text",
    ["2026-01-31T08:00:00", "2026-01-31 08:00:00Z", "1767225600", "2026-01-31", "yesterday", "", "2026-01-31T08:00Z"],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        ExecutionQuery.model_validate({"until": text})


def test_the_filters_are_read_as_given() -> None:
    event = uuid.uuid4()
    query = ExecutionQuery.model_validate({"event_id": str(event), "trigger": "schedule", "status": "dead"})
    assert (query.event_id, query.trigger, query.status) == (event, "schedule", "dead")
    for bad in ({"trigger": "cron"}, {"event_id": "x"}):
        with pytest.raises(ValidationError):
            ExecutionQuery.model_validate(bad)
    with pytest.raises(ValidationError):
        DeadLetterQuery.model_validate({"reason": "a\x00b"})


def test_a_bulk_replay_needs_a_filter_and_never_a_null_one() -> None:
    for bad in (
        {},
        {"workflow_id": None},
        {"reason": ""},
        {"since": 1700000000},
        {"event_ids": ["x"]},
        {"tenant_id": str(uuid.uuid4())},
        {"event_ids": [str(uuid.uuid4())] * 10_001},
    ):
        with pytest.raises(ValidationError):
            DlqReplayRequest.model_validate(bad)
    ok = DlqReplayRequest.model_validate({"reason": "503", "until": "2026-01-01T00:00:00Z"})
    assert ok.reason == "503" and ok.until == datetime(2026, 1, 1, tzinfo=UTC)
    schema = DlqReplayRequest.model_json_schema()
    assert schema["minProperties"] == 1 and all("anyOf" not in p for p in schema["properties"].values())


def test_like_patterns_match_their_text_literally() -> None:
    assert like_pattern("100%_\\x") == "%100\\%\\_\\\\x%"


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/api/workflows", "read"),
        ("HEAD", "/api/executions", "read"),
        ("GET", "/api/dlq/replay/1", "read"),
        ("POST", "/api/workflows", "write"),
        ("DELETE", "/api/credentials/1", "write"),
        ("POST", "/api/dlq/replay", "replay"),
        ("POST", "/api/dlq/abc/replay", "replay"),
        ("GET", "/api/keys", "admin"),
        ("DELETE", "/api/keys/1", "admin"),
        ("POST", "/api/auth/logout", None),
    ],
)
def test_scope_by_route(method: str, path: str, scope: str | None) -> None:
    needed = required_scope(method, path)
    assert (needed.value if needed is not None else None) == scope


def test_keys_have_256_bits_and_only_their_digest_identifies_them() -> None:
    key = api_keys.new_key()
    assert api_keys.well_formed(key) and api_keys.is_api_key(key) and len(key) == 47
    assert api_keys.digest(key) != api_keys.digest(api_keys.new_key())
    assert api_keys.shown_prefix(key) == key[:12]
    assert not api_keys.well_formed("ipk_" + "a" * 42 + "!")
