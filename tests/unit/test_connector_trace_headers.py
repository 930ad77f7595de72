"""The connector call is a CLIENT span; its traceparent goes to the target only for the configured types."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client as NatsClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs.common.bus import Bus
from libs.common.settings import NatsSettings
from libs.common.telemetry import setup_tracing
from services.executor.connectors import ActionCall
from services.executor.connectors.configs import HttpRequest, RenderedConfig
from services.executor.credentials import CredentialResolver
from services.executor.runner import ActionRunner
from services.executor.settings import ExecutorSettings


def test_the_default_propagates_to_http_request_only() -> None:
    assert ExecutorSettings().propagating_connectors() == frozenset({"http_request"})


async def test_only_configured_types_send_the_client_spans_traceparent() -> None:
    exporter = InMemorySpanExporter()
    setup_tracing("executor-test", processor=SimpleSpanProcessor(exporter))
    seen: dict[str, dict[str, str]] = {}

    def connector(name: str) -> Any:
        async def call(c: ActionCall[RenderedConfig]) -> dict[str, Any]:
            seen[name] = dict(c.trace_headers)
            return {"status": 200}

        return call

    resolver = CredentialResolver(Bus(NatsClient(), NatsSettings()), timeout_seconds=1.0, cache_seconds=1.0)
    runner = ActionRunner(
        {"http_request": connector("http_request"), "slack_message": connector("slack_message")},
        resolver,
        timeout_seconds=1.0,
        max_output_bytes=256,
        propagate_to=frozenset({"http_request"}),
    )
    call = ActionCall(event_id="e1", tenant_id="t1", config=HttpRequest(url="https://example.com/"))
    exporter.clear()
    await runner.call("http_request", call)
    await runner.call("slack_message", call)
    assert seen["slack_message"] == {}
    spans = {s.name: s for s in exporter.get_finished_spans()}
    client = spans["connector http_request"]
    assert client.kind is SpanKind.CLIENT and client.context is not None
    assert dict(client.attributes or {})["http.response.status_code"] == 200
    _, trace_id, parent_id, _ = seen["http_request"]["traceparent"].split("-")
    assert (trace_id, parent_id) == (format(client.context.trace_id, "032x"), format(client.context.span_id, "016x"))
    assert "baggage" not in seen["http_request"]
