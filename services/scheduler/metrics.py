"""The scheduler's Prometheus metrics, on the app's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.lateness = Histogram(
            "ipaas_scheduler_fire_lateness_seconds",
            "Time between a slot and the publish of its event",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=registry,
        )
        self.loaded = Gauge("ipaas_scheduler_schedules_loaded", "Schedules held in the timer heap", registry=registry)
        self.broken = Gauge(
            "ipaas_scheduler_schedules_broken",
            "Active schedules whose definition cannot be used",
            registry=registry,
        )
        self.fires = Counter(
            "ipaas_scheduler_fires_total",
            "Slots published; result=duplicate when JetStream already had the event (another replica)",
            ["result"],
            registry=registry,
        )
        self.skips = Counter(
            "ipaas_scheduler_skips_total", "Missed slots not fired, by reason", ["reason"], registry=registry
        )
        self.publish_failures = Counter(
            "ipaas_scheduler_publish_failures_total",
            "Publishes that NATS did not store (retried)",
            registry=registry,
        )
        self.version_checks = Counter(
            "ipaas_scheduler_version_checks_total",
            "Due slots checked against the version current at the slot: held (as planned), changed (fired with "
            "another version), not_a_slot (not fired), unavailable (Postgres did not answer; fired as held)",
            ["result"],
            registry=registry,
        )
        self.replicas = Gauge(
            "ipaas_scheduler_replicas",
            "Scheduler replicas this one hears from (itself included): the slot's owners",
            registry=registry,
        )
        self.replicas.set(1)
        self.resyncs = Counter(
            "ipaas_scheduler_resyncs_total", "Full reloads from Postgres", ["result"], registry=registry
        )
