"""The outgoing connector call as a CLIENT span, and the trace context its target receives.

The span is named ``connector <action type>`` (``connector http_request``) and carries
``ipaas.connector``, ``http.response.status_code`` when the target answered, and, set by the
HTTP connector, ``http.request.method`` and ``server.address``: never the URL, which may hold
a secret (a Slack webhook's path, an API key in the query).

Whether the target receives the span's ``traceparent`` (and ``tracestate``) is decided per
action type by ``IPAAS_EXECUTOR_TRACE_PROPAGATION`` (default ``http_request``): a generic HTTP
target belongs to the workflow's owner, who may want to follow the trace; Slack, Discord and
OpenWeather are third parties that have no use for it.  The workflow schema (API.md) has no
field for this, so it is a setting of the executor rather than of each workflow.
"""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from libs.common.telemetry import direct_tracer

TRACER_NAME = "ipaas.executor"
# Sent to a target: the trace context, never baggage (which could carry a caller's data elsewhere).
SENT_HEADERS = ("traceparent", "tracestate")


def connector_span(action_type: str) -> trace.Span:
    return direct_tracer(TRACER_NAME).start_span(
        f"connector {action_type}", kind=SpanKind.CLIENT, attributes={"ipaas.connector": action_type}
    )


def outgoing_trace_headers() -> dict[str, str]:
    """The current span's W3C trace context, as headers for a target."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {k: carrier[k] for k in SENT_HEADERS if k in carrier}


def record_status(span: trace.Span, status: object) -> None:
    if isinstance(status, int) and span.is_recording():
        span.set_attribute("http.response.status_code", status)
