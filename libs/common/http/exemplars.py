"""Trace-id exemplars for histograms, and the exposition format a scraper asked for.

An exemplar ties one observation to its trace (``{trace_id="..."}``); Prometheus shows it only
when it scrapes in OpenMetrics (``Accept: application/openmetrics-text``, with
``--enable-feature=exemplar-storage``); the classic text format leaves exemplars out.  They are
attached where an observation belongs to one event (a connector's try, a publish), not to every
histogram: each costs a dict and a formatted id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from libs.common.telemetry import current_trace_id


def trace_exemplar() -> dict[str, str] | None:
    """``{"trace_id": <hex>}`` of the current span, or ``None`` outside a span.

    Spans that are not exported (no collector configured) still have their ids, which logs and
    execution rows carry too, so the exemplar still leads somewhere.
    """
    trace_id = current_trace_id()
    return None if trace_id is None else {"trace_id": trace_id}


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry in the format ``accept`` prefers (OpenMetrics or Prometheus text) and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
