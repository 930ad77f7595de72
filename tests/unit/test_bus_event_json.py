"""The envelope's one writer: its bytes are the model's own ``model_dump_json()``, on every path.

``envelope_json`` writes every event's JSON: ``EventEnvelope.to_json()`` (manual runs,
schedules, replays) and the webhook fast path, which builds a ``WireEvent`` with no
model and splices the request body in.  These tests hold both to the model's bytes,
and fail when a field added to ``EventEnvelope`` would not reach the wire.  The ingest path's event id
text is exactly the documented UUIDv5 event id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pydantic_core
import pytest

from libs.common.models.events import (
    EventEnvelope,
    Trigger,
    WireEvent,
    envelope_json,
    event_id_for,
    event_id_text,
    schedule_dedup_key,
)
from tests.helpers.wire_events import webhook_event

WORKFLOW = uuid.UUID("0b3f8a52-6d1e-4c1b-9a6e-2f4d7c9e1a33")
TENANT = uuid.UUID("7e2c9d14-3a5b-4f8e-b1c2-d3e4f5a6b7c8")
AT = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)

# Payloads as pydantic writes them (compact), with the values JSON makes awkward.
PAYLOADS: list[Any] = [
    None,
    {"order": {"id": 17, "total": 12.5, "items": [1, 2.25, None, True]}},
    [1, "two", {"3": 3.0}],
    "plain text",
    {"unicode": "é ✓ \u2028 </script>", "control": "\x01\n\t\"'\\"},
    {"big": 123456789012345678901234567890, "small": 1e-7, "large": 1e20, "neg": -0.0},
    {"": {"nested": {"deep": [[[]]], "empty": {}}}},
]
# Values a Python caller may hand the model that JSON has no literal for; pydantic writes them its way.
PYTHON_ONLY: list[Any] = [
    {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")},
    {"decimal": Decimal("1.10"), "date": date(2026, 1, 1), "uuid": uuid.UUID(int=1), "bytes": b"ab"},
    {1: "int key", "tuple": (1, 2), "span": timedelta(seconds=90)},
]


def _envelope(trigger: Trigger, payload: Any, **extra: Any) -> EventEnvelope:
    key = extra.pop("dedup_key", f"{trigger}-key")
    fields: dict[str, Any] = {
        "event_id": event_id_for(WORKFLOW, key),
        "dedup_key": key,
        "tenant_id": TENANT,
        "workflow_id": WORKFLOW,
        "workflow_version": 7,
        "trigger": trigger,
        "payload": payload,
        "received_at": AT,
    }
    fields.update(extra)
    return EventEnvelope(**fields)


def _cases() -> list[EventEnvelope]:
    slot = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    slot_key = schedule_dedup_key(WORKFLOW, slot.isoformat())
    out: list[EventEnvelope] = []
    for payload in PAYLOADS:
        out += [
            _envelope(Trigger.WEBHOOK, payload, dedup_key="msg_1"),
            _envelope(Trigger.MANUAL, payload, dedup_key=uuid.uuid4().hex),
            _envelope(Trigger.SCHEDULE, payload, dedup_key=slot_key, scheduled_for=slot),
            _envelope(Trigger.REPLAY, payload, dedup_key="replay:abc"),
        ]
    # Datetimes pydantic writes in other shapes: no microseconds, another offset, naive.
    out.append(_envelope(Trigger.SCHEDULE, None, received_at=datetime(2026, 1, 1, tzinfo=UTC)))
    out.append(
        _envelope(
            Trigger.MANUAL, None, received_at=datetime(2026, 1, 1, 1, 2, 3, 5, tzinfo=timezone(timedelta(hours=2)))
        )
    )
    naive = datetime(2026, 1, 1, 0, 0, 0, 120000)  # noqa: DTZ001 - pydantic writes a naive one without an offset
    out.append(_envelope(Trigger.SCHEDULE, None, scheduled_for=naive))
    out += [_envelope(Trigger.MANUAL, payload) for payload in PYTHON_ONLY]
    return out


@pytest.mark.parametrize("env", _cases(), ids=lambda e: f"{e.trigger}-{type(e.payload).__name__}")
def test_the_writer_writes_the_models_bytes_for_every_trigger(env: EventEnvelope) -> None:
    assert env.to_json() == env.model_dump_json().encode()


@pytest.mark.parametrize("trigger", list(Trigger))
def test_a_model_constructed_envelope_is_written_alike(trigger: Trigger) -> None:
    # The scheduler builds envelopes with model_construct (no validation): same bytes.
    env = _envelope(trigger, {"a": 1}, scheduled_for=AT)
    constructed = EventEnvelope.model_construct(**dict(env))
    assert constructed.to_json() == env.model_dump_json().encode()


def test_ids_read_from_postgres_are_written_like_any_uuid() -> None:
    """asyncpg hands out its own UUID subclass; the scheduler model_constructs envelopes from rows."""
    from asyncpg.pgproto.pgproto import UUID as PgUUID

    env = _envelope(Trigger.SCHEDULE, None, scheduled_for=AT)
    from_row = EventEnvelope.model_construct(
        **{**dict(env), "tenant_id": PgUUID(str(TENANT)), "workflow_id": PgUUID(str(WORKFLOW))}
    )
    assert from_row.to_json() == env.model_dump_json().encode()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_webhook_fast_path_writes_the_models_bytes(payload: Any) -> None:
    """The ingest path (text ids, the raw body spliced in, no model) against the model of the same event.

    The body is as compact as the model writes it; ``payload_json`` passes it through untouched.
    """
    body = b"" if payload is None else pydantic_core.to_json(payload)
    key = "hook-1"
    fast = webhook_event(str(TENANT), str(WORKFLOW), body, version=7, dedup_key=key, received_at=AT)
    model = _envelope(Trigger.WEBHOOK, payload, dedup_key=key)
    assert envelope_json(fast) == model.model_dump_json().encode()
    assert (fast.subject, fast.msg_id) == (model.subject, model.msg_id)


def test_a_body_with_its_own_spacing_is_spliced_verbatim_and_reads_back_as_the_model() -> None:
    raw = b'{ "b" : [1, 2],\n  "a": "x" }'
    fast = envelope_json(webhook_event(TENANT, WORKFLOW, raw, version=2))
    assert b'"payload":' + raw + b',"received_at":' in fast
    parsed = EventEnvelope.model_validate_json(fast)
    assert parsed.payload == {"b": [1, 2], "a": "x"}
    # Re-written by the model, the document is the model's bytes (only the payload's spacing differed).
    assert orjson.loads(parsed.model_dump_json()) == orjson.loads(fast)


def test_a_text_body_becomes_a_json_string_payload() -> None:
    fast = envelope_json(webhook_event(TENANT, WORKFLOW, b"hello \xe2\x9c\x93", content_type="text/plain"))
    env = EventEnvelope.model_validate_json(fast)
    assert env.payload == "hello ✓"
    assert fast == env.model_dump_json().encode()


def test_every_envelope_field_reaches_the_wire() -> None:
    """A field added to EventEnvelope must be added to WireEvent and to the writer too."""
    wire_fields = set(WireEvent._fields) - {"payload_json"} | {"payload"}
    assert wire_fields == set(EventEnvelope.model_fields), "EventEnvelope and WireEvent name different fields"
    env = _envelope(Trigger.SCHEDULE, {"x": 1}, scheduled_for=AT)
    written = orjson.loads(env.to_json())
    assert list(written) == list(EventEnvelope.model_fields), "the writer drops or reorders a field"
    # Every value is written, none left at a default the model would not have.
    assert written == orjson.loads(env.model_dump_json())


def test_the_drift_check_catches_a_new_field() -> None:
    """The check above fails for an envelope model with a field the writer does not know."""

    class Wider(EventEnvelope):
        priority: int = 5

    env = Wider(**dict(_envelope(Trigger.WEBHOOK, None)))
    assert list(orjson.loads(env.to_json())) != list(Wider.model_fields)
    assert env.to_json() != env.model_dump_json().encode()


@pytest.mark.parametrize(
    "key", ["msg_1", "", "ext:sched:x", "clé-ünïcode-✓", "k" * 256, "2eb60c713f5040b1959d5b55a378c093"]
)
def test_event_id_text_equals_the_uuid5_event_id(key: str) -> None:
    workflow = uuid.uuid4()
    assert event_id_text(workflow, key) == str(event_id_for(workflow, key))
    assert event_id_text(str(workflow), key) == str(event_id_for(workflow, key))
    parsed = uuid.UUID(event_id_text(workflow, key))
    assert parsed.version == 5 and parsed.variant == uuid.RFC_4122
