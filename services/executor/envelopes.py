"""Reading a message off EVENTS: the envelope, checked against its subject, or why it cannot be read."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping

from pydantic import ValidationError

from libs.common.models.events import EVENT_ID_NAMESPACE, EventEnvelope

# Headers carried along when an event is parked and put back (the trace context).
TRACE_HEADERS = ("traceparent", "tracestate", "baggage")
MAX_REASON_ERRORS = 5


class EnvelopeError(ValueError):
    """The message is not an event this executor can run."""


def parse_envelope(subject: str, data: bytes) -> EventEnvelope:
    """The envelope in ``data``; unknown fields (from a newer producer) are ignored."""
    try:
        event = EventEnvelope.model_validate_json(data)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False)
        shown = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in problems[:MAX_REASON_ERRORS]
        )
        more = f" (and {len(problems) - MAX_REASON_ERRORS} more)" if len(problems) > MAX_REASON_ERRORS else ""
        raise EnvelopeError(f"invalid event envelope: {shown}{more}") from exc
    tenant, workflow = subject_ids(subject)
    if tenant != event.tenant_id or workflow != event.workflow_id:
        raise EnvelopeError("invalid event envelope: its tenant or workflow does not match the subject")
    return event


def subject_ids(subject: str) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(tenant, workflow) of ``events.<tenant>.<workflow>``, each None when it is not a UUID."""
    parts = subject.split(".")
    return (_uuid(parts[1]) if len(parts) > 1 else None), (_uuid(parts[2]) if len(parts) > 2 else None)


def undecodable_event_id(subject: str, data: bytes) -> uuid.UUID:
    """A stable id for a message that has none we can read: redeliveries land on the same dead letter."""
    digest = hashlib.sha256(subject.encode() + b"\n" + data).hexdigest()
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"undecodable:{digest}")


def trace_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if not headers:
        return {}
    return {k: headers[k] for k in TRACE_HEADERS if k in headers}


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
