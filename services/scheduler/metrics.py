"""The scheduler's Prometheus metrics, on the app's registry."""

from __future__ import annotations

from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        counter, gauge = partial(Counter, registry=registry), partial(Gauge, registry=registry)
        self.lateness = Histogram(
            "ipaas_scheduler_fire_lateness_seconds",
            "Time between a slot and the publish of its event",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=registry,
        )
        self.loaded = gauge("ipaas_scheduler_schedules_loaded", "Schedules held in the timer heap")
        self.broken = gauge("ipaas_scheduler_schedules_broken", "Active schedules whose definition cannot be used")
        self.fires = counter(
            "ipaas_scheduler_fires_total",
            "Slots published; result=duplicate when JetStream already had the event (another replica)",
            ["result"],
        )
        self.skips = counter("ipaas_scheduler_skips_total", "Missed slots not fired, by reason", ["reason"])
        self.publish_failures = counter(
            "ipaas_scheduler_publish_failures_total", "Publishes that NATS did not store (retried)"
        )
        self.version_checks = counter(
            "ipaas_scheduler_version_checks_total",
            "Due slots checked against the version current at the slot: held (as planned), changed (fired with "
            "another version), not_a_slot (not fired), unavailable (Postgres did not answer; fired as held)",
            ["result"],
        )
        self.replicas = gauge(
            "ipaas_scheduler_replicas", "Scheduler replicas this one hears from (itself included): the slot's owners"
        )
        self.replicas.set(1)
        self.resyncs = counter("ipaas_scheduler_resyncs_total", "Full reloads from Postgres", ["result"])
