"""The trace ids that a ``/metrics`` scrape in OpenMetrics carries as exemplars."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families

OPENMETRICS = "application/openmetrics-text; version=1.0.0"  # the Accept header that asks for exemplars


def exemplar_trace_ids(text: str, sample: str, **labels: str) -> set[str]:
    """The ``trace_id`` of every exemplar on the samples named ``sample`` whose labels include ``labels``;
    parsing ``text`` is itself a check that it is valid OpenMetrics."""
    families = list(text_string_to_metric_families(text))  # type: ignore[no-untyped-call]
    return {
        s.exemplar.labels["trace_id"]
        for f in families
        for s in f.samples
        if s.name == sample and s.exemplar is not None and all(s.labels.get(k) == v for k, v in labels.items())
    }
