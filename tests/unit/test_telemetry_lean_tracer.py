"""The lean tracer's non-recording spans carry what the SDK's would: ids, flags and trace state."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from libs.common import telemetry
from libs.common.telemetry import _SAMPLER, _LeanTracer, setup_tracing

PARENT_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_SPAN = 0x00F067AA0BA902B7


def _pair(id_generator: IdGenerator | None = None) -> tuple[_LeanTracer, SdkTracer]:
    sdk = TracerProvider(sampler=_SAMPLER, id_generator=id_generator).get_tracer("test")
    assert isinstance(sdk, SdkTracer)
    return _LeanTracer(sdk), sdk


def _same_shape(a: SpanContext, b: SpanContext) -> None:
    assert (a.trace_flags, a.trace_state, a.is_remote, a.is_valid) == (b.trace_flags, b.trace_state, b.is_remote, True)


def test_a_root_span_matches_the_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_SAMPLER, "on", False)
    lean, sdk = _pair()
    mine = lean.start_span("publish EVENTS", kind=SpanKind.PRODUCER, attributes={"a": "b"})
    theirs = sdk.start_span("publish EVENTS", kind=SpanKind.PRODUCER, attributes={"a": "b"})
    assert isinstance(mine, NonRecordingSpan) and not mine.is_recording()
    _same_shape(mine.get_span_context(), theirs.get_span_context())
    assert mine.get_span_context().trace_id != theirs.get_span_context().trace_id  # a new trace each


@pytest.mark.parametrize("flags", [TraceFlags.DEFAULT, TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID])
def test_a_child_keeps_the_parents_trace_state_and_id(monkeypatch: pytest.MonkeyPatch, flags: int) -> None:
    monkeypatch.setattr(_SAMPLER, "on", False)
    lean, sdk = _pair()
    parent = SpanContext(
        PARENT_TRACE, PARENT_SPAN, is_remote=True, trace_flags=TraceFlags(flags), trace_state=TraceState([("k", "v")])
    )
    ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    mine = lean.start_span("child", context=ctx).get_span_context()
    theirs = sdk.start_span("child", context=ctx).get_span_context()
    _same_shape(mine, theirs)
    assert mine.trace_id == theirs.trace_id == PARENT_TRACE
    assert mine.span_id not in (PARENT_SPAN, theirs.span_id)
    with trace.use_span(NonRecordingSpan(parent)):  # the current span is the parent when none is given
        assert lean.start_span("child").get_span_context().trace_id == PARENT_TRACE


def test_recording_goes_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_SAMPLER, "on", True)
    lean, _ = _pair()
    span = lean.start_span("recorded")
    assert span.is_recording()
    span.end()


def test_direct_tracer_is_lean_only_on_the_providers_setup_tracing_makes() -> None:
    assert isinstance(telemetry._provider_tracer(TracerProvider(sampler=_SAMPLER), "a"), _LeanTracer)
    assert isinstance(telemetry._provider_tracer(TracerProvider(), "a"), SdkTracer)


class _FixedIds(IdGenerator):
    def generate_span_id(self) -> int:
        return PARENT_SPAN

    def generate_trace_id(self) -> int:
        return PARENT_TRACE


@pytest.mark.parametrize("random_ids", [False, True])
def test_a_root_traceparent_is_what_the_span_would_inject(monkeypatch: pytest.MonkeyPatch, random_ids: bool) -> None:
    monkeypatch.setattr(_SAMPLER, "on", False)
    monkeypatch.setattr(_FixedIds, "is_trace_id_random", lambda self: random_ids)
    lean, _ = _pair(_FixedIds())
    carrier: dict[str, str] = {}
    with trace.use_span(lean.start_span("publish EVENTS", kind=SpanKind.PRODUCER)):
        propagate.inject(carrier)
    assert carrier == {"traceparent": lean.root_traceparent()}
    assert carrier["traceparent"].endswith("-02" if random_ids else "-00")
    monkeypatch.setattr(_SAMPLER, "on", True)
    assert lean.root_traceparent() is None  # recorded: the span must be made


def test_root_traceparent_only_with_an_empty_context(monkeypatch: pytest.MonkeyPatch) -> None:
    setup_tracing("test")
    monkeypatch.setattr(_SAMPLER, "on", False)
    monkeypatch.setattr(telemetry, "direct_tracer", lambda name: _pair()[0])
    header = telemetry.root_traceparent("ipaas.bus")
    assert header is not None
    version, trace_id, span_id, flags = header.split("-")
    assert (version, len(trace_id), len(span_id), flags) == ("00", 32, 16, "02")
    assert telemetry.root_traceparent("ipaas.bus") != header  # fresh ids each time
    parent = SpanContext(PARENT_TRACE, PARENT_SPAN, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    with trace.use_span(NonRecordingSpan(parent)):
        assert telemetry.root_traceparent("ipaas.bus") is None  # a span to continue
    token = otel_context.attach(baggage.set_baggage("k", "v"))
    try:
        assert telemetry.root_traceparent("ipaas.bus") is None  # baggage to carry
    finally:
        otel_context.detach(token)
    monkeypatch.setattr(propagate, "get_global_textmap", lambda: TraceContextTextMapPropagator())
    assert telemetry.root_traceparent("ipaas.bus") is None  # other propagators: they inject
    monkeypatch.undo()
    monkeypatch.setattr(_SAMPLER, "on", True)
    assert telemetry.root_traceparent("ipaas.bus") is None
