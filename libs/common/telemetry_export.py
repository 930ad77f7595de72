"""Where spans go: OTLP over HTTP/protobuf or gRPC, as the standard ``OTEL_*`` variables say.

- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns export on;
  without it nothing is exported and no exporter is even imported.
- ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf``
  (the default) or ``grpc``.  Any other value (``http/json`` has no Python exporter) is logged
  and ``http/protobuf`` is used.
- ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn export off.
- Everything else (headers, timeouts, compression, certificates, ``OTEL_BSP_*``) is read by the
  exporter and the batch processor themselves.

Every exported span passes through :class:`~libs.common.telemetry_masking.MaskingExporter` first.
"""

from __future__ import annotations

import logging
import os

from opentelemetry.sdk.trace.export import SpanExporter

from libs.common.telemetry_masking import MaskingExporter

log = logging.getLogger(__name__)

HTTP_PROTOBUF = "http/protobuf"
GRPC = "grpc"


def otlp_enabled() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def otlp_protocol() -> str:
    """``http/protobuf`` or ``grpc``: the traces-specific variable first, then the general one."""
    chosen = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    raw = (chosen or HTTP_PROTOBUF).strip().lower()
    if raw in (HTTP_PROTOBUF, GRPC):
        return raw
    log.warning("unsupported OTLP protocol; using http/protobuf", extra={"protocol": raw})
    return HTTP_PROTOBUF


def otlp_exporter() -> SpanExporter:
    """The OTLP span exporter for :func:`otlp_protocol`, wrapped in masking."""
    inner: SpanExporter
    if otlp_protocol() == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        inner = GrpcExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        inner = HttpExporter()
    return MaskingExporter(inner)
