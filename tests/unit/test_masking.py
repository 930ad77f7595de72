"""Secret shapes are redacted from log output; ordinary fields are untouched."""

from __future__ import annotations

import json
import logging
import random
import time
import traceback
import uuid

import pytest

from libs.common.logs import mask_text, mask_truncated, mask_value
from libs.common.logs.json_format import MAX_EXCEPTION_CHARS, MAX_FIELD_CHARS, MAX_MESSAGE_CHARS, TRUNCATED
from libs.common.logs.mask_passes import neutral
from libs.common.logs.masking import is_secret_key
from libs.common.logs.secret_shapes import SHAPES, Shape
from tests.helpers.json_logs import json_logger
from tests.helpers.masking_corpus import JWT as SAMPLE_JWT
from tests.helpers.masking_corpus import adversarial
from tests.helpers.masking_reference import reference_mask

JWT = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiIxMjM0NTY3ODkwIiwidGlkIjoiYWJjIn0."
    "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)

# (label, text containing a secret, the secret itself)
SECRETS = [
    ("bearer", "Authorization: Bearer abcDEF123456ghiJKL", "abcDEF123456ghiJKL"),
    ("jwt", f"token {JWT} received", JWT),
    ("whsec", "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw shown", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("ipaas api key", "curl -H 'X: ipk_7fK2mQx9LpR4vT8nW1cZ5bH3jD6sY0aE' sent", "7fK2mQx9LpR4vT8nW1cZ5bH3jD6sY0aE"),
    (
        "slack webhook",
        "posting to https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
        "T000/B000/XXXXXXXXXXXXXXXX",
    ),
    ("discord webhook", "url=https://discord.com/api/webhooks/123456789/AbCdEf-GhIjK_lmnop", "AbCdEf-GhIjK_lmnop"),
    ("api_key json", '{"api_key": "k-1234567890"}', "k-1234567890"),
    ("password kv", "login password=hunter2hunter2 user=alice", "hunter2hunter2"),
    ("secret kv", "client_secret: s3cr3tvalue", "s3cr3tvalue"),
    ("aws access key", "key AKIAIOSFODNN7EXAMPLE in env", "AKIAIOSFODNN7EXAMPLE"),
    (
        "aws secret key",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("basic-auth url", "connect postgres://app:pa55word@db.internal:5432/ipaas", "pa55word"),
    ("basic header", "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
    ("slack token", "xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl"),
    ("github token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("stripe key", "sk_live_51Habcdefghijklmnop", "sk_live_51Habcdefghijklmnop"),
    ("openweather appid", "GET /data/2.5/weather?q=Paris&appid=0123456789abcdef", "0123456789abcdef"),
    (
        "pem key",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA\n-----END PRIVATE KEY-----",
        "MC4CAQAwBQYDK2VwBCIEIA",
    ),
    # Keywords are found in any case.
    *[
        (f"any case: {text}", text, "hunter2hunter2")
        for text in (
            "PASSWORD=hunter2hunter2",
            "Password: hunter2hunter2",
            "pAsSwOrD=hunter2hunter2",
            '{"apiKey": "hunter2hunter2"}',
            "AppId=hunter2hunter2",
            "Authorization: BEARER hunter2hunter2",
            "bEaReR hunter2hunter2",
            "TOKEN = hunter2hunter2",
        )
    ],
]


def _logged(message: str, **fields: object) -> dict[str, object]:
    logger, stream = json_logger(f"masking-{uuid.uuid4()}")
    logger.setLevel(logging.INFO)
    logger.info(message, extra=fields)
    line = stream.getvalue().strip()
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


@pytest.mark.parametrize(("label", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_secret_is_redacted_in_log_message_and_fields(label: str, text: str, secret: str) -> None:
    assert secret not in mask_text(text) and "[REDACTED]" in mask_text(text)
    entry = _logged(text)
    assert secret not in json.dumps(entry), label
    assert "REDACTED" in str(entry["msg"])
    entry = _logged("event", detail=text, nested={"inner": [text]})
    assert secret not in json.dumps(entry), label


def test_secret_keyed_fields_are_redacted_whatever_their_value() -> None:
    entry = _logged(
        "credential stored",
        password="correct horse",
        api_key="plain",
        token="t0k",
        webhook_url="https://example.com/x",
        user="alice",
    )
    dumped = json.dumps(entry)
    for value in ("correct horse", "plain", "t0k", "https://example.com/x"):
        assert value not in dumped
    assert entry["user"] == "alice"


def test_ordinary_fields_are_untouched() -> None:
    text = (
        "order 42 shipped to alice@example.com via https://api.example.com/v1/orders?id=42 "
        "status=ok count=3 trace 4bf92f3577b34da6a3ce929d0e0e4736"
    )
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


# --- Linear time, same output as the previous rules -------------------------------------------------

R = "[REDACTED]"
MiB = 1 << 20
SMALL = adversarial(600)  # the previous rules are quadratic: keep these short


@pytest.fixture(scope="module")
def one_mib() -> dict[str, str]:
    return adversarial(MiB)


_PIECES = [
    "eyJ",
    "eyJa",
    "-",
    ".",
    "_",
    "a",
    "Z",
    "0",
    " ",
    "\n",
    "\t",
    "password",
    "Password",
    "PASSWORD",
    "pAsSwD",
    "passwd",
    "token",
    "Token",
    "tOkEn",
    "secret",
    "client_secret",
    "api_key",
    "apiKey",
    "API-KEY",
    "appId",
    "access_key",
    "private-key",
    "aws_secret_access_key",
    "=",
    ":",
    '"',
    "'",
    "&",
    ",",
    ";",
    "}",
    "://",
    "x",
    "@",
    "/",
    "Bearer",
    "bearer",
    "BASIC ",
    "bAsIc",
    "whsec_",
    "ipk_",
    "xoxb-",
    "ghp_",
    "sk_live_",
    "rk_test_",
    "AKIA",
    "ABCDEFGH",
    "0123456789",
    "https://hooks.slack.com/services/",
    "slack-gov",
    "https://discord.com/api/webhooks/",
    "123",
    "v10/",
    "-----BEGIN ",
    "-----END ",
    "PRIVATE KEY",
    "RSA ",
    "-----",
    "é",
    "\u2003",
    "+",
    "~",
    "ab12CD34ef56",
    "eyJhbGciOi",
    '": "',
    ": ",
    '":"',
]


@pytest.mark.slow
def test_random_mixtures_mask_as_the_previous_rules() -> None:
    rng = random.Random(20240611)
    for _ in range(1000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 40)))
        assert mask_text(text) == reference_mask(text), text


@pytest.mark.parametrize(
    "text",
    [
        *(pytest.param(text, id=name) for name, text in SMALL.items()),
        "pAsSwOrD=hunter2 " * 200,  # other spellings, many: the case-insensitive pattern
        "pAsSwOrD=hunter2 " * 3 + "." * 3000,  # few: through the lower-cased text
        "pAsSwOrD=hunter2 é" * 200,  # not ASCII
        "token=abc&" * 300 + "token= spaced&TOKEN=up&Token: cap",  # key=value passes, then the general one
        "token=abc&" * 300 + "x-token=a-token=b&",  # a key=value inside a value
        "Bearer abcdefgh12 " * 300 + "bearer x-Bearer abcdefgh12 ",
        "apiKey=k1&ACCESS_KEY=k2&monkey=m&private-Key=k3&" * 200,
        "QkEyZ+/a" * 100 + " api_key=k1 ",  # other spellings, none where a key=value could start
        "QkEyZ+/a" * 100 + " apI_kEy=k1 é",  # and one that does
    ],
    ids=lambda text: text[:24],
)
def test_adversarial_inputs_and_many_occurrences_mask_as_the_previous_rules(text: str) -> None:
    assert mask_text(text) == reference_mask(text)


@pytest.mark.parametrize("name", adversarial(64))
def test_one_mib_adversarial_input_masks_in_linear_time(name: str, one_mib: dict[str, str]) -> None:
    text = one_mib[name]
    started = time.perf_counter()
    mask_text(text)
    elapsed = time.perf_counter() - started
    # The bench holds these to 50 ms; this bound only has to catch a quadratic pattern on a busy machine
    # (the previous rules took over a minute on 64 KiB of letters).
    assert elapsed < 0.5, f"{name}: {elapsed * 1000:.0f} ms"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("eyJa-" * 400, "eyJa-" * 400),
        ("eyJa-" * 400 + SAMPLE_JWT, "eyJa-" * 400 + R),
        ("password" + " " * 5000 + "= hunter2", "password" + " " * 5000 + "= " + R),
        ("Bearer" + " " * 5000 + "abcdefgh12", "Bearer " + R),
        ("https://" + "a" * 5000, "https://" + "a" * 5000),
        ("x://user:" + "p" * 5000, "x://user:" + "p" * 5000),
        ("x://user:" + "p" * 5000 + "@host", "x://user:" + R + "@host"),
        ("a=a&" * 1000, "a=a&" * 1000),
        ("password=hunter2 token=abc&" * 3, "password=[REDACTED] token=[REDACTED]&" * 3),
        ("-----BEGIN PRIVATE KEY-----\n" * 50, "-----BEGIN PRIVATE KEY-----\n" * 50),
        ("-----BEGIN PRIVATE KEY-----\n" * 3 + "MIIB\n-----END PRIVATE KEY-----", R),
    ],
)
def test_adversarial_shapes_keep_or_mask_exactly(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_no_replacement_can_form_a_keyword_unless_marked() -> None:
    for shape in SHAPES:
        if isinstance(shape, Shape):
            assert shape.neutral == neutral(shape.replacement), shape.name


# --- Truncate first, then mask ----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, 1, 100, 2000, 9000])
@pytest.mark.parametrize(
    "text",
    [
        "",
        "x" * 1990 + " token=supersecretvalue and more",
        "y" * 1995 + " " + SAMPLE_JWT + " tail",
        "z" * 60_000 + " password=hunter2",
        (SAMPLE_JWT + " ") * 3000 + "password=hunter2 " + "w" * 100,  # masking shrinks it: a longer prefix is masked
        "-----BEGIN PRIVATE KEY-----\n" + "A" * 3000 + "\n-----END PRIVATE KEY-----" + " q" * 20_000,
    ],
)
def test_mask_truncated_is_mask_then_cut(text: str, limit: int) -> None:
    assert mask_truncated(text, limit) == mask_text(text)[:limit]


def test_mask_truncated_masks_only_a_prefix_of_a_long_text() -> None:
    text = "password=hunter2 " * (2 * MiB)  # 34 MiB of secrets: masking all of it takes seconds
    started = time.perf_counter()
    cut = mask_truncated(text, 2000)
    assert time.perf_counter() - started < 0.25
    assert cut == ("password=" + R + " ") * 100


def test_mask_truncated_refuses_a_negative_limit() -> None:
    with pytest.raises(ValueError, match="negative"):
        mask_truncated("abc", -1)


# --- Structured values and keys ---------------------------------------------------------------------


def test_mask_value_cuts_strings_first_and_masks_keys_and_depth() -> None:
    deep: object = "bottom"
    for _ in range(40):
        deep = [deep]
    value = {
        "note": "n" * 50 + " token=abc",
        "api_key": "plain",
        "list": ("a", "password=x"),
        "n": 3,
        "empty_secret": "",
        "deep": deep,
    }
    masked = mask_value(value, 20)
    assert masked["note"] == "n" * 20
    assert masked["api_key"] == R
    assert masked["list"] == ["a", "password=" + R]
    assert masked["n"] == 3 and masked["empty_secret"] == ""
    assert R in json.dumps(masked["deep"])
    assert mask_value(value)["note"] == "n" * 50 + " token=" + R


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("Authorization", True),
        ("x-api-key", True),
        ("apiKey", True),
        ("slack.webhook_url", True),
        ("SESSION", True),
        ("credentials", True),
        ("dsn", True),
        ("passenger", False),
        ("tokens_used", False),
        ("author", False),
        ("user", False),
        ("monkey", False),
        ("", False),
    ],
)
def test_secret_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


# --- Where bounded text is written: log lines and the executor's stored error and output -------------


def test_log_message_and_fields_are_capped_after_masking() -> None:
    message = "m" * (MAX_MESSAGE_CHARS - 10) + " token=supersecretvalue " + "t" * 5000
    entry = _logged(message, detail="d" * (MAX_FIELD_CHARS + 500) + " password=x")
    msg = str(entry["msg"])
    assert msg.endswith(TRUNCATED) and len(msg) == MAX_MESSAGE_CHARS + len(TRUNCATED)
    assert "supers" not in msg and msg.startswith("m" * (MAX_MESSAGE_CHARS - 10) + " token=[")
    assert entry["detail"] == "d" * MAX_FIELD_CHARS


def test_log_exception_text_is_masked_and_capped() -> None:
    logger, stream = json_logger("masking-exc")
    try:
        raise RuntimeError("connect postgres://app:pa55word@db/x " + "e" * (2 * MAX_EXCEPTION_CHARS))
    except RuntimeError:
        logger.exception("failed")
        formatted = traceback.format_exc()
    exc = str(json.loads(stream.getvalue())["exc"])
    assert "pa55word" in formatted and "pa55word" not in exc
    assert exc.endswith(TRUNCATED) and len(exc) == MAX_EXCEPTION_CHARS + len(TRUNCATED)


def test_executor_stores_errors_and_output_masked_and_bounded() -> None:
    from services.executor.runner import ActionRunner, safe_error

    message = "x" * 1990 + " token=supersecretvalue " + "y" * 50_000
    assert safe_error(message) == mask_text(message)[:2000]
    assert len(safe_error(message)) == 2000 and "supers" not in safe_error(message)

    runner = ActionRunner({}, None, timeout_seconds=1.0, max_output_bytes=256)  # type: ignore[arg-type]  # no credentials
    assert runner.safe_output({"status": 200, "token": "abc", "body": "Bearer abcdefgh12"}) == {
        "status": 200,
        "token": R,
        "body": "Bearer " + R,
    }
    big = runner.safe_output({"body": "password=hunter2 " * 100_000})
    assert big["truncated"] is True and len(big["preview"]) == 256
    assert big["preview"] == json.dumps({"body": ("password=" + R + " ") * 20}, separators=(",", ":"))[:256]
