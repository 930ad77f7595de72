"""IPAAS_TRACE_URL_TEMPLATE: a warning inside a trace links to it; a template without {trace_id} is refused."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError

from libs.common.logs.json_format import JsonFormatter
from libs.common.settings import ServiceSettings

TEMPLATE = "http://jaeger:16686/trace/{trace_id}"


def line(formatter: JsonFormatter, level: int) -> dict[str, object]:
    record = logging.LogRecord("t", level, __file__, 1, "something happened", (), None)
    return dict(json.loads(formatter.format(record)))


def test_warnings_inside_a_span_carry_the_trace_url_and_info_lines_do_not() -> None:
    tracer = TracerProvider().get_tracer("test")
    formatter = JsonFormatter("executor", TEMPLATE)
    with tracer.start_as_current_span("process EVENTS") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        warning, info = line(formatter, logging.WARNING), line(formatter, logging.INFO)
    assert warning["trace_url"] == f"http://jaeger:16686/trace/{trace_id}"
    assert "trace_url" not in info and info["trace_id"] == trace_id
    assert "trace_url" not in line(formatter, logging.ERROR)  # outside any span: no trace, no link
    assert "trace_url" not in line(JsonFormatter("executor"), logging.ERROR)


def test_the_setting_needs_the_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPAAS_TRACE_URL_TEMPLATE", TEMPLATE)
    assert ServiceSettings().trace_url_template == TEMPLATE
    monkeypatch.setenv("IPAAS_TRACE_URL_TEMPLATE", "http://jaeger:16686/trace/")
    with pytest.raises(ValidationError, match="trace_id"):
        ServiceSettings()
    monkeypatch.delenv("IPAAS_TRACE_URL_TEMPLATE")
    assert ServiceSettings().trace_url_template == ""
