"""The outbox relay's pure decisions: what goes on the wire for a row, and the fate of each outcome."""

from __future__ import annotations

import json

import pytest

from libs.common.bus import BusUnavailable, MessageRejected, PublishRejected, StreamFull
from services.gateway.outbox_rows import (
    MAX_REASON_LENGTH,
    Fate,
    Unpublishable,
    decide,
    prepare,
    stored_headers,
    valid_subject,
)
from services.gateway.wire import message_size

MAX = 1024 * 1024
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
HEADERS = json.dumps({"traceparent": TRACEPARENT})  # the headers column of a row


def test_the_stored_json_goes_out_as_stored_big_numbers_included():
    text = (
        '{"n": 1180591620717411303424, "m": -9223372036854775809, "d": 0.1000000000000000000001, "z": '
        + "7" * 5000
        + "}"
    )
    message = prepare(
        subject="events.t.w", msg_id="replay:e:1", payload_text=text, headers_text=HEADERS, max_payload=MAX
    )
    assert message.payload == text.encode()  # a 5000-digit number: Python's json could not even read it
    assert b'"n": 1180591620717411303424' in message.payload and 2**70 == 1180591620717411303424  # exact
    assert message.headers == {"traceparent": TRACEPARENT, "Nats-Msg-Id": "replay:e:1"}


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "events..w",
        "events.*.w",
        "events.t.>",
        "events.t w",
        "events.t\r\nPUB x",
        "events." + "a" * 1100,
        ".events",
        "events.",
    ],
)
def test_malformed_subjects_are_unpublishable(subject: str):
    assert not valid_subject(subject)
    with pytest.raises(Unpublishable, match="invalid subject"):
        prepare(subject=subject, msg_id="outbox:1", payload_text="{}", headers_text=None, max_payload=MAX)


def test_valid_subjects_pass():
    assert valid_subject("workflows.changed.6f1c2a9e-4a52-5d7e-9a43-1d8f4f0b7c21.x")
    assert valid_subject("events.t.w")


def test_a_message_over_max_payload_with_its_headers_is_unpublishable():
    fits = "x" * 850
    message = prepare(subject="a.b", msg_id="outbox:1", payload_text=fits, headers_text=HEADERS, max_payload=1000)
    assert message_size(message.payload, message.headers) <= 1000
    # The payload alone is under the limit; with the headers it is not (the server would reset the connection).
    with pytest.raises(Unpublishable, match="over the server's max_payload of 1000"):
        prepare(subject="a.b", msg_id="outbox:1", payload_text="x" * 950, headers_text=HEADERS, max_payload=1000)


def test_message_size_counts_the_header_block_like_the_protocol():
    headers = {"Nats-Msg-Id": "abc", "traceparent": "tp"}
    block = b"NATS/1.0\r\nNats-Msg-Id: abc\r\ntraceparent: tp\r\n\r\n"
    assert message_size(b"12345", headers) == len(block) + 5
    assert message_size(b"12345", {}) == 5


@pytest.mark.parametrize("text", [None, "", "null", "[1, 2]", '"x"', "{", "[" * 5000 + "]" * 5000])
def test_unusable_stored_headers_are_dropped_not_fatal(text: str | None):
    assert stored_headers(text) == {}


def test_stored_headers_keep_only_what_can_be_sent():
    text = json.dumps(
        {
            "traceparent": "tp",
            "bad key": "v",
            "x": 5,
            "y": "line\r\nbreak",
            "Nats-Msg-Id": "forged",
            "tracestate": "a=b",
        }
    )
    assert stored_headers(text) == {"traceparent": "tp", "tracestate": "a=b"}


def test_fates():
    assert decide(None, attempts=0, max_attempts=5).fate is Fate.PUBLISHED
    invalid = decide(Unpublishable("invalid subject"), attempts=0, max_attempts=5)
    assert (invalid.fate, invalid.kind, invalid.reason) == (Fate.SET_ASIDE, "invalid", "invalid subject")
    too_big = MessageRejected("s", status=400, err_code=10054, description="message size exceeds maximum allowed")
    rejected = decide(too_big, attempts=0, max_attempts=5)
    assert (rejected.fate, rejected.kind) == (Fate.SET_ASIDE, "rejected")
    assert "message size exceeds maximum allowed" in rejected.reason and "10054" in rejected.reason
    # The bus away, or a full stream: stop the pass, never set the row aside, however often it happens.
    full = StreamFull("s", status=503, err_code=10077, description="maximum bytes exceeded")
    for transient in (BusUnavailable("down"), full, PublishRejected("s", status=500, err_code=1, description="?")):
        assert decide(transient, attempts=1000, max_attempts=5).fate is Fate.STOP
    # Anything else is the row's trouble: retried, and set aside at the last attempt.
    odd = TypeError("something odd")
    assert decide(odd, attempts=0, max_attempts=5).fate is Fate.RETRY
    assert decide(odd, attempts=3, max_attempts=5).fate is Fate.RETRY
    last = decide(odd, attempts=4, max_attempts=5)
    assert (last.fate, last.kind) == (Fate.SET_ASIDE, "failing")
    assert last.reason == "TypeError: something odd (after 5 attempts)"
    assert decide(odd, attempts=0, max_attempts=1).fate is Fate.SET_ASIDE


def test_reasons_are_bounded():
    decision = decide(ValueError("v" * 10_000), attempts=0, max_attempts=1)
    assert len(decision.reason) == MAX_REASON_LENGTH and decision.reason.endswith("...")
