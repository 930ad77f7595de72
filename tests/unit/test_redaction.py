"""Resolved secret values are replaced wherever they appear: text, values, log lines, recorded exceptions."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.common.logs.redaction import Redactor, redacting
from libs.common.logs.secret_shapes import REDACTED
from libs.common.telemetry import ActiveSpan
from services.executor.runner import ActionRunner, safe_error
from tests.helpers.json_logs import json_logger

SLACK = "https://hooks.example.test/services/T0PLANT/B0PLANT/plantedslacktoken77"
HEADER = "Bearer zq81plantedbearer"
KEY = "ow-key-5521-planted"
SECRET = {"webhook_url": SLACK, "headers": {"Authorization": HEADER, "X-Short": "abc"}, "api_key": KEY}
PLANTED = ("plantedslacktoken77", "zq81plantedbearer", KEY, "T0PLANT/B0PLANT")


def _redactor() -> Redactor:
    redactor = Redactor()
    redactor.add_secret(SECRET)
    return redactor


def _leaks(text: str) -> list[str]:
    return [p for p in PLANTED if p in text]


def test_values_and_their_echoed_forms_are_replaced():
    r = _redactor()
    text = (
        f"got {SLACK} and path /services/T0PLANT/B0PLANT/plantedslacktoken77 and token zq81plantedbearer, "
        f"header {HEADER}, json {json.dumps(SLACK)}, query appid={KEY}&x=1, encoded "
        f"{SLACK.replace(':', '%3A').replace('/', '%2F')}"
    )
    out = r.text(text)
    assert _leaks(out) == [] and REDACTED in out
    assert out.startswith("got ")
    assert r.text("abc stays: short values are not looked for") == "abc stays: short values are not looked for"


@pytest.mark.parametrize("cut", [6, 9, len(KEY) - 1])
def test_a_value_cut_at_the_end_of_a_text_is_replaced(cut):
    r = _redactor()
    assert r.text("answered 500: key=" + KEY[:cut]) == "answered 500: key=" + REDACTED
    assert r.text("ends with ow-key") == "ends with " + REDACTED
    assert r.text("ends with ow-ke") == "ends with ow-ke"  # shorter than a secret worth looking for


def test_structured_values_keys_included():
    r = _redactor()
    value = {"status": 200, "body": {"headers": {"authorization": HEADER, KEY: [SLACK, {"n": 1}]}}}
    out = r.value(value)
    assert _leaks(json.dumps(out)) == []
    assert out["status"] == 200 and out["body"]["headers"][REDACTED][1] == {"n": 1}


def test_an_empty_redactor_changes_nothing():
    assert Redactor().value({"a": SLACK}) == {"a": SLACK}


def test_safe_output_and_safe_error_redact_before_and_after_cutting():
    r = _redactor()
    runner = ActionRunner({}, None, timeout_seconds=1, max_output_bytes=300)  # type: ignore[arg-type]
    small = runner.safe_output({"body": f"echo {HEADER}"}, r)
    assert _leaks(json.dumps(small)) == []
    big = runner.safe_output({"body": "x" * 280 + SLACK}, r)
    assert big["truncated"] is True and _leaks(big["preview"]) == []
    assert "plantedsl" not in big["preview"] and "/services/T0" not in big["preview"]
    error = safe_error("target answered 500: " + "y" * 10 + KEY, limit=40, redactor=r)
    assert _leaks(error) == [] and "ow-key" not in error
    assert safe_error("answered 500: " + KEY) == "answered 500: " + KEY  # no redactor: nothing known


def test_log_lines_written_while_redacting_leave_the_values_out():
    logger, stream = json_logger("test.redaction")
    logger.setLevel(logging.INFO)
    with redacting(_redactor()):
        logger.info("calling %s", SLACK, extra={"detail": {"h": HEADER}, "key": KEY})
        try:
            raise ValueError(f"bad url {SLACK}")
        except ValueError:
            logger.exception("failed with %s", KEY)
    logger.info("outside: %s", KEY)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert [_leaks(line) for line in lines[:2]] == [[], []]
    assert KEY in lines[2]  # outside the block nothing is known: the test sees a leak when there is one


def test_recorded_exceptions_leave_the_values_out(spans: InMemorySpanExporter):
    tracer = trace.get_tracer("test")
    with pytest.raises(RuntimeError), redacting(_redactor()), ActiveSpan(tracer.start_span("process")):
        raise RuntimeError(f"target {SLACK} refused {HEADER}")
    with pytest.raises(RuntimeError), ActiveSpan(tracer.start_span("plain")):
        raise RuntimeError(f"target {SLACK}")
    redacted_span, plain_span = spans.get_finished_spans()
    dump = json.dumps([dict(e.attributes or {}) for e in redacted_span.events])
    assert "exception.message" in dump and _leaks(dump) == []
    assert _leaks(redacted_span.status.description or "") == []
    assert SLACK in json.dumps([dict(e.attributes or {}) for e in plain_span.events])


def test_needles_are_worked_out_once_per_secret_and_match_the_forms():
    from libs.common.logs import redaction

    redaction._needles_of.cache_clear()
    first, second = _redactor(), _redactor()
    assert redaction._needles_of.cache_info().hits >= 1  # the second event reuses the first one's needles
    expected = {f for v in redaction._leaves(SECRET) for f in redaction._forms(v) if len(f) >= 6}
    assert set(first._needles) == set(second._needles) == expected
    lengths = [len(n) for n in first._needles]
    assert lengths == sorted(lengths, reverse=True)


def test_a_second_secret_adds_to_the_first_in_either_order():
    other = {"token": "second-token-998877", "url": "https://api.example.test/v1/hooks/zz99secondpath"}
    one, two = Redactor(), Redactor()
    one.add_secret(SECRET)
    one.add_secret(other)
    two.add_secret(other)
    two.add_secret(SECRET)
    assert set(one._needles) == set(two._needles)
    assert [len(n) for n in one._needles] == sorted((len(n) for n in one._needles), reverse=True)
    text = f"{KEY} and second-token-998877 and zq81plantedbearer and /v1/hooks/zz99secondpath"
    assert one.text(text) == two.text(text) == f"{REDACTED} and {REDACTED} and {REDACTED} and {REDACTED}"
