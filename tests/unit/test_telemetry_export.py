"""Export configuration from the standard OTEL_* variables, and the masking every exported span passes."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, TraceFlags

from libs.common.logs.secret_shapes import REDACTED
from libs.common.telemetry_export import otlp_enabled, otlp_exporter, otlp_protocol
from libs.common.telemetry_masking import MaskingExporter

WHSEC = "whsec_" + "A1b2C3d4E5f6G7h8I9j0"
BEARER = "Bearer " + "abcdefghijklmnop0123"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
    ):
        monkeypatch.delenv(name, raising=False)


def test_export_is_on_only_with_an_endpoint_and_not_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not otlp_enabled()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert otlp_enabled()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not otlp_enabled()
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not otlp_enabled()


def test_protocol_defaults_to_http_protobuf_and_the_traces_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    assert otlp_protocol() == "http/protobuf"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert otlp_protocol() == "grpc"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    assert otlp_protocol() == "http/protobuf"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")  # no Python exporter: the default
    assert otlp_protocol() == "http/protobuf"


@pytest.mark.parametrize(("protocol", "module"), [("grpc", "grpc"), ("http/protobuf", "http")])
def test_the_exporter_matches_the_protocol_and_masks(
    monkeypatch: pytest.MonkeyPatch, protocol: str, module: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    exporter = otlp_exporter()
    assert isinstance(exporter, MaskingExporter)
    inner = exporter._inner
    assert f"opentelemetry.exporter.otlp.proto.{module}." in type(inner).__module__
    exporter.shutdown()


def test_attributes_events_links_and_status_are_masked_on_export() -> None:
    received = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(MaskingExporter(received)))
    tracer = provider.get_tracer("test")
    linked = SpanContext(trace_id=1, span_id=2, is_remote=True, trace_flags=TraceFlags(1))
    try:
        with tracer.start_as_current_span(
            "call",
            links=[Link(linked, {"note": f"from {WHSEC}"})],
            attributes={
                "http.request.header.authorization": "anything",
                "ipaas.note": f"sent {BEARER}",
                "count": 3,
                "ipaas.cred_id": "c1",
            },
        ):
            raise RuntimeError(f"target answered 500: {BEARER} {WHSEC}")
    except RuntimeError:
        pass
    (span,) = received.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["http.request.header.authorization"] == REDACTED
    assert attributes["ipaas.note"] == f"sent Bearer {REDACTED}"
    assert attributes["count"] == 3 and attributes["ipaas.cred_id"] == "c1"
    everything = (
        repr(attributes)
        + repr([dict(e.attributes or {}) for e in span.events])
        + repr([dict(link.attributes or {}) for link in span.links])
        + str(span.status.description)
    )
    assert REDACTED in (span.status.description or "")
    for secret in ("abcdefghijklmnop0123", "A1b2C3d4E5f6G7h8I9j0"):
        assert secret not in everything
    assert span.events[0].name == "exception" and REDACTED in str(dict(span.events[0].attributes or {}))
    provider.shutdown()
