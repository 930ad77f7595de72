"""The publish histogram: every observation counted, a trace-id exemplar per bucket at most once a second."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from services.gateway.hooks import publish_metrics
from services.gateway.hooks.publish_metrics import PublishLatency

TRACE_A, TRACE_B = "a" * 32, "b" * 32


def _tp(trace_id: str) -> str:
    return f"00-{trace_id}-00f067aa0ba902b7-00"


def _buckets(registry: CollectorRegistry) -> dict[str, tuple[float, str | None]]:
    """``le`` -> (cumulative count, exemplar trace id)."""
    out: dict[str, tuple[float, str | None]] = {}
    for metric in registry.collect():
        for s in metric.samples:
            if s.name == "ipaas_gateway_publish_duration_seconds_bucket":
                out[s.labels["le"]] = (s.value, s.exemplar.labels["trace_id"] if s.exemplar else None)
    return out


def test_one_exemplar_per_bucket_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"now": 100.0}
    monkeypatch.setattr(time, "monotonic", lambda: clock["now"])  # the module reads time.monotonic
    registry = CollectorRegistry()
    latency = PublishLatency(registry)
    latency.observe(0.001, _tp(TRACE_A))  # exactly on a bound: counted in le=0.001
    latency.observe(0.0009, _tp(TRACE_B))  # same bucket within the second: counted, exemplar kept
    latency.observe(0.02, _tp(TRACE_B))  # another bucket: its own exemplar
    buckets = _buckets(registry)
    assert buckets["0.001"] == (2.0, TRACE_A)
    assert buckets["0.025"] == (3.0, TRACE_B)
    assert buckets["0.0005"] == (0.0, None)
    clock["now"] += publish_metrics.EXEMPLAR_EVERY_SECONDS
    latency.observe(0.0008, _tp(TRACE_B))  # a second later: the bucket takes a new one
    assert _buckets(registry)["0.001"] == (3.0, TRACE_B)
    latency.observe(9.0, None)  # +Inf, no traceparent and no current span: counted, no exemplar
    assert _buckets(registry)["+Inf"] == (5.0, None)
