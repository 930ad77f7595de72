"""Secret shapes are redacted from log output; ordinary fields are untouched."""

from __future__ import annotations

import io
import json
import logging

import pytest

from libs.common.logs import JsonFormatter, MaskingFilter, mask_text, mask_value

JWT = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiIxMjM0NTY3ODkwIiwidGlkIjoiYWJjIn0."
    "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)

# (label, text containing a secret, the secret itself)
SECRETS = [
    ("bearer", "Authorization: Bearer abcDEF123456ghiJKL", "abcDEF123456ghiJKL"),
    ("jwt", f"token {JWT} received", JWT),
    ("whsec", "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw shown", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("slack webhook", "posting to https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
     "T000/B000/XXXXXXXXXXXXXXXX"),
    ("discord webhook", "url=https://discord.com/api/webhooks/123456789/AbCdEf-GhIjK_lmnop",
     "AbCdEf-GhIjK_lmnop"),
    ("api_key json", '{"api_key": "k-1234567890"}', "k-1234567890"),
    ("password kv", "login password=hunter2hunter2 user=alice", "hunter2hunter2"),
    ("secret kv", "client_secret: s3cr3tvalue", "s3cr3tvalue"),
    ("aws access key", "key AKIAIOSFODNN7EXAMPLE in env", "AKIAIOSFODNN7EXAMPLE"),
    ("aws secret key", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("basic-auth url", "connect postgres://app:pa55word@db.internal:5432/ipaas", "pa55word"),
    ("basic header", "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
    ("slack token", "xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl"),
    ("github token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("stripe key", "sk_live_51Habcdefghijklmnop", "sk_live_51Habcdefghijklmnop"),
    ("openweather appid", "GET /data/2.5/weather?q=Paris&appid=0123456789abcdef", "0123456789abcdef"),
    ("pem key", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA\n-----END PRIVATE KEY-----",
     "MC4CAQAwBQYDK2VwBCIEIA"),
]


def _logged(message: str, **fields: object) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger(f"masking-{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.info(message, extra=fields)
    line = stream.getvalue().strip()
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


@pytest.mark.parametrize(("label", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_secret_is_redacted_in_log_message(label: str, text: str, secret: str) -> None:
    entry = _logged(text)
    assert secret not in json.dumps(entry), label
    assert "REDACTED" in str(entry["msg"])


@pytest.mark.parametrize(("label", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_secret_is_redacted_in_log_fields(label: str, text: str, secret: str) -> None:
    entry = _logged("event", detail=text, nested={"inner": [text]})
    assert secret not in json.dumps(entry), label


def test_secret_keyed_fields_are_redacted_whatever_their_value() -> None:
    entry = _logged("credential stored", password="correct horse", api_key="plain", token="t0k",
                    webhook_url="https://example.com/x", user="alice")
    dumped = json.dumps(entry)
    for value in ("correct horse", "plain", "t0k", "https://example.com/x"):
        assert value not in dumped
    assert entry["user"] == "alice"


def test_ordinary_fields_are_untouched() -> None:
    text = ("order 42 shipped to alice@example.com via https://api.example.com/v1/orders?id=42 "
            "status=ok count=3 trace 4bf92f3577b34da6a3ce929d0e0e4736")
    assert mask_text(text) == text
    value = {"order_id": 42, "name": "Widget", "tags": ["a", "b"], "price": 9.5, "ok": True}
    assert mask_value(value) == value
    entry = _logged(text, order_id=42, city="Paris")
    assert entry["msg"] == text
    assert entry["order_id"] == 42 and entry["city"] == "Paris"


def test_log_line_shape_and_trace_correlation() -> None:
    from opentelemetry import trace

    from libs.common.telemetry import setup_tracing

    setup_tracing("test")
    with trace.get_tracer("t").start_as_current_span("work") as span:
        entry = _logged("hello %s", who="x")
        ctx = span.get_span_context()
    assert {"ts", "level", "service", "msg"} <= entry.keys()
    assert entry["level"] == "info" and entry["service"] == "test"
    assert entry["trace_id"] == format(ctx.trace_id, "032x")
    assert entry["span_id"] == format(ctx.span_id, "016x")
    outside = _logged("no span")
    assert "trace_id" not in outside
