"""OTLP trace receivers inside a test: HTTP/protobuf (an aiohttp app on ``/v1/traces``) and gRPC
(a ``grpc.aio`` server with the TraceService servicer), both decoding with ``opentelemetry-proto``.

Each keeps every span it received as a :class:`ReceivedSpan` (ids in hex, attributes as plain
Python values), so a test can rebuild a trace tree and check names, kinds and parent links.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from deploy.local.infra import free_port


@dataclass
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    status_message: str = ""

    def text(self) -> str:
        """Everything a collector would show of this span, as one string (for secret checks)."""
        return json.dumps([self.name, self.attributes, self.events, self.links, self.status_message], default=str)


def _value(v: common_pb2.AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which) if which else None


def _attrs(kvs: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def decode(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []
    for rs in request.resource_spans:
        service = str(_attrs(rs.resource.attributes).get("service.name", ""))
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(
                    ReceivedSpan(
                        service=service,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(),
                        name=s.name,
                        kind=trace_pb2.Span.SpanKind.Name(s.kind).removeprefix("SPAN_KIND_"),
                        attributes=_attrs(s.attributes),
                        events=[(e.name, _attrs(e.attributes)) for e in s.events],
                        links=[(link.trace_id.hex(), link.span_id.hex(), _attrs(link.attributes)) for link in s.links],
                        status_message=s.status.message,
                    )
                )
    return spans


class _Store:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.port = free_port()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        self.spans.extend(decode(request))


class OtlpHttpReceiver(_Store):
    """``POST /v1/traces`` with ``application/x-protobuf`` bodies; answers an empty export response.
    ``bodies`` keeps each body as it arrived (gunzipped): protobuf, its strings plain UTF-8."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []
        self._runner: web.AppRunner | None = None

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.bodies.append(body)
        message = trace_service_pb2.ExportTraceServiceRequest()
        message.ParseFromString(body)
        self.add(message)
        return web.Response(
            body=trace_service_pb2.ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def start(self) -> OtlpHttpReceiver:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class OtlpGrpcReceiver(_Store, trace_service_pb2_grpc.TraceServiceServicer):
    """The OTLP TraceService over plaintext gRPC."""

    def __init__(self) -> None:
        super().__init__()
        self._server: Any = None

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    async def start(self) -> OtlpGrpcReceiver:
        self._server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            self, self._server
        )
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self._server.start()
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0.5)
