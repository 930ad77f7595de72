"""The bus's error hierarchy: one base, one class per condition a caller handles.

Every publish failure is a :class:`BusUnavailable`, so a caller that only
answers "503, retry later" needs one ``except``.  A caller that must tell a
message it should set aside from a bus that is only busy (the gateway's
outbox relay) catches :class:`MessageRejected` first: that message, as it
is, will never be stored, and retrying the same bytes cannot help.
"""

from __future__ import annotations

from typing import Any

import nats.errors

# JetStream error codes (nats-server errors.json) that mean "no room now": the stream's limits are
# reached with discard=new ("maximum bytes exceeded", "maximum messages exceeded", ...), or the
# server is short of storage.  They clear when consumers catch up or an operator raises the limits.
STORE_FAILED = 10077
INSUFFICIENT_RESOURCES = 10047
_FULL_CODES = frozenset({STORE_FAILED, INSUFFICIENT_RESOURCES})
# What nats-py refuses before sending: this message can never go out as it is.
CLIENT_REFUSALS = (nats.errors.MaxPayloadError, nats.errors.BadSubjectError, nats.errors.BadHeaderError)


class BusError(Exception):
    """Base class for bus failures."""


class BusUnavailable(BusError):
    """NATS or JetStream did not store the message now; the caller should retry later."""


class BusMisconfigured(BusError):
    """A setting makes connecting impossible (an unreadable TLS CA file); retrying cannot help."""


class StreamConflict(BusError):
    """A stream exists with a setting that cannot be changed in place (its retention): an operator
    must drain and delete it.  Provisioning stops on it; retrying cannot help."""


class NotProvisioned(BusError):
    """A stream or durable consumer a service needs does not exist (yet), or has the wrong retention.

    ``missing`` names each one (``stream EVENTS``, ``consumer EVENTS/executor``); the provisioning
    step creates them.
    """

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"not provisioned yet: {', '.join(missing)}")
        self.missing = missing


class NoResponders(BusUnavailable):
    """A request found nobody subscribed to its subject (no replica of the responding service)."""


class RequestTimeout(BusUnavailable):
    """A request's reply did not come back within its timeout."""


class PublishRejected(BusUnavailable):
    """JetStream answered the publish with an error (a PubAck carrying ``error``).

    ``status`` is the error's HTTP-like code (400, 503, ...; 0 when the client
    refused before sending), ``err_code`` the JetStream error code.
    """

    def __init__(self, subject: str, *, status: int, err_code: int, description: str) -> None:
        super().__init__(f"publish to {subject} rejected: {description} (status {status}, err_code {err_code})")
        self.subject = subject
        self.status = status
        self.err_code = err_code
        self.description = description


class StreamFull(PublishRejected):
    """The stream has no room now (limits with discard=new, or no storage): retry later."""


class MessageRejected(PublishRejected):
    """This message can never be stored as it is: too large, a malformed subject or header, a failed
    expectation.  Retrying it unchanged cannot succeed."""


class MessageTooLarge(MessageRejected):
    """The message with its headers is over the server's ``max_payload``: refused before sending
    (sent anyway, the server would close the connection every publish shares)."""

    def __init__(self, subject: str, *, size: int, limit: int) -> None:
        super().__init__(subject, status=0, err_code=0, description=f"{size} bytes is over the {limit}-byte limit")
        self.size = size
        self.limit = limit


def rejection(subject: str, error: Any) -> PublishRejected:
    """The exception for a PubAck's ``error`` object.

    4xx errors belong to the message (permanent); anything else, including an
    error the server described oddly, is treated as the bus's (retry later),
    so nothing is set aside on a guess.
    """
    fields = error if isinstance(error, dict) else {}
    status = _int(fields.get("code"))
    err_code = _int(fields.get("err_code"))
    description = str(fields.get("description") or "unknown error")[:200]
    kind = MessageRejected if 400 <= status < 500 else StreamFull if err_code in _FULL_CODES else PublishRejected
    return kind(subject, status=status, err_code=err_code, description=description)


def send_failure(subject: str, exc: BaseException) -> BusUnavailable:
    """The exception for a publish that nats-py could not send: :class:`MessageRejected` when the
    client refused the message itself (:data:`CLIENT_REFUSALS`), else :class:`BusUnavailable`."""
    if isinstance(exc, CLIENT_REFUSALS):
        return MessageRejected(subject, status=0, err_code=0, description=str(exc))
    return BusUnavailable(f"publish to {subject} failed: {type(exc).__name__}")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
