"""CLIENT spans for the Postgres statements that belong to one event, after the database semconv.

Named ``<operation> <table>`` (``INSERT executions``), with ``db.system.name=postgresql``,
``db.operation.name`` and ``db.collection.name``; never the statement's parameters.  Written
by hand around a store's call rather than by instrumenting the driver: the executor writes
claims and outcomes in batches shared by many events, and a span per event around its own
share is what its trace needs (a driver span would land in whichever event's trace started
the batch).
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from libs.common.telemetry import direct_tracer

TRACER_NAME = "ipaas.db"


def db_span(operation: str, table: str, step: str | None = None) -> trace.Span:
    """A CLIENT span for ``operation`` on ``table``; ``step`` names the store call (``claim``, ``finish``)."""
    attributes = {"db.system.name": "postgresql", "db.operation.name": operation, "db.collection.name": table}
    if step is not None:
        attributes["ipaas.db.step"] = step
    return direct_tracer(TRACER_NAME).start_span(f"{operation} {table}", kind=SpanKind.CLIENT, attributes=attributes)
