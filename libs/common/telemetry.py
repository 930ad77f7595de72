"""OpenTelemetry tracing from the standard ``OTEL_*`` variables.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
set, spans go out over OTLP in batches, HTTP/protobuf or gRPC as
``OTEL_EXPORTER_OTLP_PROTOCOL`` says (:mod:`libs.common.telemetry_export`), masked
like log lines (:mod:`libs.common.telemetry_masking`).  With neither, or with
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``, nothing is
exported and spans are not recorded: each is a non-recording span that still
has its trace and span ids (so trace ids reach logs, headers and execution
rows) but costs no attribute handling or span processing on the hot paths.
Tests may pass their own exporter or processor, which turns recording on.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Sequence
from functools import lru_cache
from types import TracebackType
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from libs.common.logs.redaction import current_redactor
from libs.common.telemetry_export import otlp_enabled, otlp_exporter

_configured = False


class _WhenExported(Sampler):
    """Records (and samples) spans once something takes them, else drops them.

    A dropped span keeps valid ids, so propagation and correlation work the
    same; it is just not built up.  Not parent-based: a service that exports
    records its spans whatever the caller's sampling flag says.
    """

    def __init__(self) -> None:
        self.on = False

    def should_sample(
        self,
        parent_context: context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        chosen = ALWAYS_ON if self.on else ALWAYS_OFF
        return chosen.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "WhenExported"


_SAMPLER = _WhenExported()
# The propagators every service uses (W3C trace context and baggage), installed by setup_tracing.
_TEXTMAP = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def setup_tracing(
    service_name: str, *, exporter: SpanExporter | None = None, processor: SpanProcessor | None = None
) -> TracerProvider:
    """Install the global tracer provider once per process and return it."""
    global _configured
    propagate.set_global_textmap(_TEXTMAP)
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        provider = current
    else:
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
        provider = TracerProvider(resource=resource, sampler=_SAMPLER)
        if otlp_enabled():
            provider.add_span_processor(BatchSpanProcessor(otlp_exporter()))
            _SAMPLER.on = True
        trace.set_tracer_provider(provider)
        _configured = True
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
        _SAMPLER.on = True
    if processor is not None:
        provider.add_span_processor(processor)
        _SAMPLER.on = True
    return provider


def spans_recorded() -> bool:
    """Whether spans are recorded (something takes them); if not, a hot path may skip its own."""
    return _SAMPLER.on


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


class _LeanTracer(trace.Tracer):
    """The SDK tracer of a provider sampled by :data:`_SAMPLER`, with a shortcut while nothing records.

    While spans are not recorded, :meth:`start_span` builds the same non-recording span
    as the SDK (the parent's trace id and trace state, or a new random trace id; a new span
    id; the flags the SDK sets: not sampled, and the random-trace-id flag as the SDK
    decides it) without the sampler call and the SDK's per-span bookkeeping, which cost
    several times more.  Once something records, every call goes to the SDK tracer.
    """

    def __init__(self, tracer: SdkTracer) -> None:
        self._sdk = tracer
        self._ids = tracer.id_generator
        self._random_ids = tracer.id_generator.is_trace_id_random()

    def start_span(
        self,
        name: str,
        context: context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        if _SAMPLER.on or not self._sdk._is_enabled():  # the SDK's own switch, read as it reads it
            return self._sdk.start_span(
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, trace_state, random_id = parent.trace_id, parent.trace_state, parent.trace_flags.random_trace_id
        else:
            trace_id, trace_state, random_id = self._ids.generate_trace_id(), None, self._random_ids
        flags = _RANDOM_NOT_SAMPLED if random_id else _NOT_SAMPLED
        span_context = trace.SpanContext(
            trace_id, self._ids.generate_span_id(), is_remote=False, trace_flags=flags, trace_state=trace_state
        )
        return trace.NonRecordingSpan(span_context)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._sdk.start_as_current_span(*args, **kwargs)

    def root_traceparent(self) -> str | None:
        """The ``traceparent`` of a new root span that nothing records, without the span (``None``: recording)."""
        if _SAMPLER.on or not self._sdk._is_enabled():
            return None
        trace_id, span_id = self._ids.generate_trace_id(), self._ids.generate_span_id()
        if trace_id == trace.INVALID_TRACE_ID or span_id == trace.INVALID_SPAN_ID:
            return None
        flags = _RANDOM_NOT_SAMPLED if self._random_ids else _NOT_SAMPLED
        return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


_NOT_SAMPLED = trace.TraceFlags(trace.TraceFlags.DEFAULT)
_RANDOM_NOT_SAMPLED = trace.TraceFlags(trace.TraceFlags.DEFAULT | trace.TraceFlags.RANDOM_TRACE_ID)


@lru_cache(maxsize=16)
def _provider_tracer(provider: trace.TracerProvider, name: str) -> trace.Tracer:
    tracer = provider.get_tracer(name)
    if isinstance(provider, TracerProvider) and provider.sampler is _SAMPLER and isinstance(tracer, SdkTracer):
        return _LeanTracer(tracer)
    return tracer


def direct_tracer(name: str) -> trace.Tracer:
    """The current provider's own tracer for ``name``, for hot paths.

    A module-level ``trace.get_tracer`` made before :func:`setup_tracing`
    is a proxy, which adds a layer of context managers to every span.  On the
    provider :func:`setup_tracing` installs, it is a :class:`_LeanTracer`.
    """
    return _provider_tracer(trace.get_tracer_provider(), name)


def root_traceparent(name: str) -> str | None:
    """What injecting a new span of tracer ``name`` would write, when that is only a ``traceparent``.

    That is so when the current context is empty (no span to continue, no baggage), spans are
    not recorded, and the propagators are the ones :func:`setup_tracing` installs: the span
    would be a non-recording root with fresh ids, and the header its trace context.  A hot
    path (the webhook's publish) then sends the header without building and activating the
    span.  ``None`` in every other case: start the span and inject as usual.
    """
    if context.get_current() or propagate.get_global_textmap() is not _TEXTMAP:
        return None
    tracer = direct_tracer(name)
    return tracer.root_traceparent() if isinstance(tracer, _LeanTracer) else None


class ActiveSpan:
    """``with ActiveSpan(tracer.start_span(...)):`` the span is current inside, then ended.

    Like ``start_as_current_span`` (an exception is recorded on the span and
    sets its status to ERROR), in one small object instead of nested
    generator-based context managers.  Inside ``redaction.redacting`` the
    recorded message, stack trace and status leave out the work's secret values.
    """

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> trace.Span:
        self._token = context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if isinstance(exc, Exception) and self._span.is_recording():
                redactor = current_redactor()
                status = f"{type(exc).__name__}: {exc}"
                if redactor:
                    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                    self._span.record_exception(
                        exc,
                        attributes={
                            "exception.message": redactor.text(str(exc)),
                            "exception.stacktrace": redactor.text(stack),
                        },
                    )
                    status = redactor.text(status)
                else:
                    self._span.record_exception(exc)
                self._span.set_status(Status(StatusCode.ERROR, status))
        finally:
            context.detach(self._token)  # type: ignore[arg-type]
            self._span.end()
