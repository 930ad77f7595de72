"""The outbox relay's decisions, as pure functions: how a row goes on the wire, and what a failure means.

:func:`prepare` turns a stored row into the exact message: the payload is
the row's jsonb rendered by Postgres (``payload::text``), sent as is.  The
stored document is the truth; it is never decoded into Python and encoded
again, so nothing in it can fail to serialise (integers beyond 64 bits,
numbers with thousands of digits, deep nesting all go out exactly as
stored).  A row that still cannot be put on the wire raises
:class:`Unpublishable`.

:func:`decide` maps the outcome of one publish onto the row's fate:

==========================================  ===========================================
outcome                                     fate
==========================================  ===========================================
published                                   ``PUBLISHED``: marked ``published_at``
:class:`Unpublishable`                      ``SET_ASIDE`` at once (``invalid``)
``MessageRejected`` (JetStream or client)   ``SET_ASIDE`` at once (``rejected``)
any other ``BusUnavailable`` (down, full)   ``STOP``: the pass ends, the relay backs off;
                                            not the row's fault, no attempt counted
anything else                               ``RETRY`` (attempt counted, pass ends), and
                                            ``SET_ASIDE`` (``failing``) at the last attempt
==========================================  ===========================================
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from libs.common.bus import BusUnavailable, MessageRejected
from libs.common.bus.client import MSG_ID_HEADER
from services.gateway.wire import message_size

MAX_SUBJECT_LENGTH = 1024  # far below the server's control-line limit (4096), which resets the connection
MAX_REASON_LENGTH = 500
# An RFC 9110 token; anything else makes the client refuse the whole message.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class Unpublishable(Exception):
    """This row cannot be put on the wire at all (its subject, or its size)."""


class Fate(StrEnum):
    PUBLISHED = "published"
    SET_ASIDE = "set_aside"
    RETRY = "retry"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Decision:
    fate: Fate
    reason: str = ""  # stored in outbox.error
    kind: str = ""  # the metric's reason label: invalid, rejected, failing


@dataclass(frozen=True, slots=True)
class Prepared:
    subject: str
    payload: bytes
    headers: dict[str, str]


def prepare(*, subject: str, msg_id: str, payload_text: str, headers_text: str | None, max_payload: int) -> Prepared:
    """The message for one row: its subject, its stored JSON as bytes, its stored headers plus the msg id."""
    if not valid_subject(subject):
        raise Unpublishable("invalid subject")
    payload = payload_text.encode()
    headers = stored_headers(headers_text)
    headers[MSG_ID_HEADER] = msg_id
    size = message_size(payload, headers)
    if size > max_payload:
        raise Unpublishable(f"message of {size} bytes is over the server's max_payload of {max_payload}")
    return Prepared(subject=subject, payload=payload, headers=headers)


def valid_subject(subject: str) -> bool:
    """A literal subject: non-empty tokens, no wildcards, no whitespace or control characters."""
    if not subject or len(subject) > MAX_SUBJECT_LENGTH or not subject.isprintable() or " " in subject:
        return False
    return all(token and token not in ("*", ">") for token in subject.split("."))


def stored_headers(text: str | None) -> dict[str, str]:
    """The row's headers (the writer's trace context), keeping only entries that can be sent.

    They are best effort: a malformed entry is dropped, never a reason to hold the message back.
    """
    if not text:
        return {}
    try:
        raw: Any = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {
        k: v
        for k, v in raw.items()
        if isinstance(k, str)
        and isinstance(v, str)
        and _HEADER_NAME.fullmatch(k)
        and v.isprintable()
        and k.lower() != MSG_ID_HEADER.lower()
    }


def decide(error: BaseException | None, *, attempts: int, max_attempts: int) -> Decision:
    """The fate of a row after one publish; ``attempts`` is how often it failed before."""
    if error is None:
        return Decision(Fate.PUBLISHED)
    if isinstance(error, Unpublishable):
        return Decision(Fate.SET_ASIDE, _clip(str(error)), "invalid")
    if isinstance(error, MessageRejected):
        reason = f"rejected by the bus: {error.description} (status {error.status}, err_code {error.err_code})"
        return Decision(Fate.SET_ASIDE, _clip(reason), "rejected")
    if isinstance(error, BusUnavailable):
        return Decision(Fate.STOP)
    reason = f"{type(error).__name__}: {error}"
    if attempts + 1 >= max_attempts:
        return Decision(Fate.SET_ASIDE, _clip(f"{reason} (after {attempts + 1} attempts)"), "failing")
    return Decision(Fate.RETRY, _clip(reason))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_LENGTH else text[: MAX_REASON_LENGTH - 3] + "..."
