"""Breaker state per (tenant, connector): only unhealthy breakers, capped, the rest counted."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.executor.breaker_metrics import BreakerStateCollector
from services.executor.breakers import Breakers


def exposition(breakers: Breakers, cap: int) -> list[tuple[str, dict[str, str], float]]:
    registry = CollectorRegistry()
    registry.register(BreakerStateCollector(breakers, cap))
    text = generate_latest(registry).decode()
    return [(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def test_only_breakers_that_are_not_closed_are_shown_up_to_the_cap() -> None:
    breakers = Breakers(fail_max=1, reset_seconds=60, clock=lambda: 0.0)
    for tenant in ("t1", "t2", "t3"):
        breakers.failure(tenant, "slack_message", trial=False)
    breakers.success("t5", "http_request", trial=False)
    shown = exposition(breakers, cap=2)
    states = [labels for name, labels, _ in shown if name == "ipaas_executor_breaker_state"]
    unhealthy = {(t, c) for t, c, _ in breakers.open_keys()}
    assert unhealthy == {("t1", "slack_message"), ("t2", "slack_message"), ("t3", "slack_message")}
    assert len(states) == 2 and all(s["state"] == "open" for s in states)
    assert {(s["tenant"], s["connector"]) for s in states} <= unhealthy
    assert not any(s["tenant"] == "t5" for s in states)
    assert [v for name, _, v in shown if name == "ipaas_executor_breakers_unlisted"] == [1.0]


def test_no_series_when_every_breaker_is_closed() -> None:
    breakers = Breakers(fail_max=3, reset_seconds=60)
    breakers.failure("t1", "slack_message", trial=False)
    shown = exposition(breakers, cap=100)
    assert [s for s in shown if s[0] == "ipaas_executor_breaker_state"] == []
    assert [v for name, _, v in shown if name == "ipaas_executor_breakers_unlisted"] == [0.0]
