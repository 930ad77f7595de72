"""The executor's Prometheus metrics, registered on the app's registry."""

from __future__ import annotations

from functools import partial
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from libs.common.http.exemplars import trace_exemplar
from libs.common.http.metrics import Metrics
from services.executor.breaker_metrics import BreakerStateCollector
from services.executor.breakers import Breakers


class ExecutorMetrics:
    def __init__(self, metrics: Metrics) -> None:
        reg = self._registry = metrics.registry
        counter, gauge = partial(Counter, registry=reg), partial(Gauge, registry=reg)
        self.executions = counter(
            "ipaas_executor_executions_total", "Tries finished, by connector and outcome", ["connector", "status"]
        )
        self.duration = Histogram(
            "ipaas_executor_action_duration_seconds",
            "Duration of one try of an action",
            ["connector"],
            registry=reg,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.in_flight = gauge("ipaas_executor_in_flight", "Messages this replica is working on")
        self.deferred = counter(
            "ipaas_executor_deferred_total",
            "Events parked outside the consumer until due, by reason (retry, fairness, lease)",
            ["reason"],
        )
        self.breaker_refusals = counter(
            "ipaas_executor_breaker_refusals_total",
            "Tries failed fast by an open breaker (the target was not called)",
            ["connector"],
        )
        self.lease_lost = counter(
            "ipaas_executor_lease_lost_total", "Outcomes not written because another replica had taken the event over"
        )
        self.parked = gauge("ipaas_executor_parked_events", "Events parked in Postgres, waiting to be due")
        self.stream_messages = gauge("ipaas_stream_messages", "Messages stored in a stream", ["stream"])
        self.stream_bytes = gauge("ipaas_stream_bytes", "Bytes stored in a stream", ["stream"])
        self.stream_fill = gauge(
            "ipaas_stream_fill_ratio", "Bytes stored over max_bytes (0 when the stream is unbounded)", ["stream"]
        )
        self.consumer_pending = gauge(
            "ipaas_executor_consumer_pending", "Messages the durable consumer has not delivered yet (lag)"
        )
        self.consumer_ack_pending = gauge(
            "ipaas_executor_consumer_ack_pending", "Messages delivered and not yet acked, all replicas"
        )
        self.breaker_transitions = counter(
            "ipaas_executor_breaker_transitions_total",
            "Circuit breaker state changes",
            ["connector", "from_state", "to_state"],
        )
        self.breakers_open = gauge("ipaas_executor_breakers_open", "Breakers currently open or half-open")
        self.dead_letters = counter("ipaas_executor_dead_letters_total", "Events dead-lettered", ["connector"])
        # Label children of the per-event metrics, looked up once (connectors and statuses are few).
        self._counted: dict[tuple[str, str], Any] = {}
        self._timed: dict[str, Any] = {}

    def count(self, connector: str, status: str) -> None:
        """One more finished try of ``connector`` with ``status``."""
        child = self._counted.get((connector, status))
        if child is None:
            child = self._counted[(connector, status)] = self.executions.labels(connector, status)
        child.inc()

    def observe_duration(self, connector: str, seconds: float) -> None:
        """One try's duration, with the event's trace id as exemplar (shown to OpenMetrics scrapers)."""
        child = self._timed.get(connector)
        if child is None:
            child = self._timed[connector] = self.duration.labels(connector)
        child.observe(seconds, trace_exemplar())

    def watch_breakers(self, breakers: Breakers) -> None:
        """Export the state of every breaker that is not closed, per (tenant, connector), capped."""
        self._registry.register(BreakerStateCollector(breakers))

    def on_breaker_transition(self, connector: str, old: str, new: str) -> None:
        self.breaker_transitions.labels(connector, old, new).inc()
        was_closed, now_closed = old in ("closed", "none"), new == "closed"
        if was_closed and not now_closed:
            self.breakers_open.inc()
        elif now_closed and not was_closed:
            self.breakers_open.dec()
