"""The event envelope carried on the ``EVENTS`` stream, and the subjects it uses.

One writer: every envelope's JSON is written by :func:`envelope_json`, from a
:class:`WireEvent` (the envelope's fields as the wire wants them: ids as text, the
payload as JSON bytes).  ``EventEnvelope.to_json()`` goes through it, and so does the
gateway's webhook fast path, which builds a ``WireEvent`` without validating a model
and splices the request body in as the payload.  The bytes are the model's own
``model_dump_json()``: the same fields in the same order, datetimes with ``Z``, the
payload as pydantic writes it (the fast path's body is spliced verbatim: the same JSON
value, and the same bytes when the body is as compact as pydantic's).
``tests/unit/test_bus_event_json.py`` holds the writer to that, and fails when a field
added to ``EventEnvelope`` is missing from ``WireEvent``.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field

# Namespace for deterministic event ids: uuid5(NS, f"{workflow_id}:{dedup_key}").
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a9e-4a52-5d7e-9a43-1d8f4f0b7c21")


class Trigger(StrEnum):
    WEBHOOK = "webhook"
    SCHEDULE = "schedule"
    MANUAL = "manual"
    REPLAY = "replay"


class ExecutionStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"
    FILTERED = "filtered"  # a filter step was false: a success that ran no later steps


def event_id_for(workflow_id: uuid.UUID | str, dedup_key: str) -> uuid.UUID:
    """The same (workflow, dedup key) always maps onto the same event id.

    A duplicate that arrives after JetStream's duplicate window still lands on
    the same execution row, whose uniqueness stops a second run.
    """
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{workflow_id}:{dedup_key}")


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes


def event_id_text(workflow_id: uuid.UUID | str, dedup_key: str) -> str:
    """``str(event_id_for(workflow_id, dedup_key))`` without building UUID objects (the ingest hot path).

    The same UUIDv5 computation: SHA-1 of namespace + name, version 5, RFC 4122 variant.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{workflow_id}:{dedup_key}".encode()).digest()[:16])  # noqa: S324 - UUIDv5 is SHA-1 by definition
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


SCHEDULE_KEY_PREFIX = "sched:"


def schedule_dedup_key(workflow_id: uuid.UUID | str, slot_iso: str) -> str:
    """``sched:<workflow_id>:<slot-iso>``: one fire per slot, whatever the replicas and the version.

    The version is deliberately not part of the key: two replicas that learn of a
    new version at different moments must still collapse onto one event for a
    slot.  The event's ``workflow_version`` field says which version runs.  (Keys
    written before this rule carried the version, ``sched:<wf>:<version>:<slot>``;
    they keep the same prefix, so the gateway's namespace guard and
    :func:`msg_id_for` treat both alike.)
    """
    return f"{SCHEDULE_KEY_PREFIX}{workflow_id}:{slot_iso}"


def msg_id_for(workflow_id: uuid.UUID | str, dedup_key: str) -> str:
    """The ``Nats-Msg-Id`` of an event.

    Sender-chosen keys (``webhook-id``, ``Idempotency-Key``) are scoped by the
    workflow id, so two senders that happen to pick the same id cannot drop each
    other's events.  Schedule keys already carry the workflow id and are used as is.
    """
    if dedup_key.startswith(SCHEDULE_KEY_PREFIX):
        return dedup_key
    return f"{workflow_id}:{dedup_key}"


def events_subject(tenant_id: uuid.UUID | str, workflow_id: uuid.UUID | str) -> str:
    return f"events.{tenant_id}.{workflow_id}"


def dlq_subject(tenant_id: uuid.UUID | str, workflow_id: uuid.UUID | str) -> str:
    return f"dlq.{tenant_id}.{workflow_id}"


def workflow_changed_subject(tenant_id: uuid.UUID | str, workflow_id: uuid.UUID | str) -> str:
    return f"workflows.changed.{tenant_id}.{workflow_id}"


class BusMessage(BaseModel):
    """A message on the bus: frozen, and it ignores fields it does not know.

    During a rolling upgrade a newer producer may add a field, and an older consumer must
    still read the message (the public API keeps rejecting unknown fields).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)


def _now() -> datetime:
    return datetime.now(UTC)


# workflow_versions.version is a Postgres integer.
MAX_VERSION = 2**31 - 1


class EventEnvelope(BusMessage):
    """One triggered event: what the executor runs, exactly once in effect."""

    event_id: uuid.UUID
    dedup_key: str
    tenant_id: uuid.UUID
    workflow_id: uuid.UUID
    workflow_version: int = Field(ge=1, le=MAX_VERSION)
    trigger: Trigger
    payload: Any = None
    received_at: datetime = Field(default_factory=_now)
    scheduled_for: datetime | None = None

    @property
    def subject(self) -> str:
        return events_subject(self.tenant_id, self.workflow_id)

    @property
    def msg_id(self) -> str:
        return msg_id_for(self.workflow_id, self.dedup_key)

    def wire(self) -> WireEvent:
        """This envelope as the wire writes it (the payload serialised as pydantic does)."""
        payload = self.payload
        return WireEvent(  # positional, in WireEvent's field order: the cheapest build
            self.event_id,
            self.dedup_key,
            self.tenant_id,
            self.workflow_id,
            self.workflow_version,
            self.trigger,
            # As model_dump_json writes the field: NaN and infinities as null (pydantic's ser_json_inf_nan default).
            b"null" if payload is None else pydantic_core.to_json(payload, inf_nan_mode="null"),
            self.received_at,
            self.scheduled_for,
        )

    def to_json(self) -> bytes:
        """The envelope's JSON: ``model_dump_json().encode()``, written by :func:`envelope_json`."""
        return envelope_json(self.wire())


class WireEvent(NamedTuple):
    """An :class:`EventEnvelope`'s fields ready for :func:`envelope_json`; built directly on hot paths.

    Nothing is validated here: the builder (``EventEnvelope.wire()``, or the webhook
    ingest, whose ids and version come from its own look-ups) vouches for the values, and
    ``payload_json`` must be one JSON value.  A named tuple: immutable, and the cheapest
    record to build on the ingest path (a frozen dataclass costs several times more).
    Ids may be text (ingest has them as text) or ``UUID`` objects (a model's), which orjson
    writes in the same form without a ``str()`` each.
    """

    event_id: str | uuid.UUID
    dedup_key: str
    tenant_id: str | uuid.UUID
    workflow_id: str | uuid.UUID
    workflow_version: int
    trigger: str
    payload_json: bytes
    received_at: datetime
    scheduled_for: datetime | None = None

    @property
    def subject(self) -> str:
        return events_subject(self.tenant_id, self.workflow_id)

    @property
    def msg_id(self) -> str:
        return msg_id_for(self.workflow_id, self.dedup_key)


def envelope_json(e: WireEvent) -> bytes:
    """The one writer of an envelope's JSON: the model's field order, ``payload_json`` spliced in as is."""
    return orjson.dumps(
        {
            "event_id": e.event_id,
            "dedup_key": e.dedup_key,
            "tenant_id": e.tenant_id,
            "workflow_id": e.workflow_id,
            "workflow_version": e.workflow_version,
            "trigger": e.trigger,
            "payload": orjson.Fragment(e.payload_json),
            "received_at": e.received_at,
            "scheduled_for": e.scheduled_for,
        },
        option=orjson.OPT_UTC_Z,
        default=_uuid_text,
    )


def _uuid_text(value: object) -> str:
    """orjson writes ``uuid.UUID`` itself; a subclass (asyncpg's, from a row) is written as its text."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"an envelope field of type {type(value).__name__} cannot be written")


class DeadLetter(BusMessage):
    """What the executor publishes to the ``DLQ`` stream for an event it gave up on."""

    event: EventEnvelope
    reason: str
    attempts: int
    dead_at: datetime = Field(default_factory=_now)


class UndecodableEvent(BusMessage):
    """Published to the ``DLQ`` stream for a message on EVENTS that is not a valid envelope."""

    subject: str
    reason: str
    raw_base64: str
    dead_at: datetime = Field(default_factory=_now)


class WorkflowChanged(BusMessage):
    """Published by the gateway's outbox relay on ``workflows.changed.<tenant>.<id>``."""

    tenant_id: uuid.UUID
    workflow_id: uuid.UUID
    version: int
    change: str  # created | updated | enabled | disabled | deleted | rolled_back | secret_rotated
    is_active: bool
    deleted: bool = False
    changed_at: datetime = Field(default_factory=_now)
