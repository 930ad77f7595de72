"""The breaker: threshold, per-tenant isolation, exactly one half-open trial, transitions reported; its state
per (tenant, connector) as metrics: only unhealthy breakers, capped, the rest counted."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.executor.breaker_metrics import BreakerStateCollector
from services.executor.breakers import Breakers, NotCalled
from services.executor.errors import BreakerOpen, PermanentError, TransientError
from tests.helpers.fake_clock import ManualClock


async def call(b: Breakers, exc: BaseException | None) -> None:
    """A call to ("A", "x") through ``b`` whose block raises ``exc``: the block's own error must come back out
    unchanged (it is swallowed here); anything else, such as a refusal on entry, is raised."""
    try:
        async with b("A", "x"):
            if exc is not None:
                raise exc
    except BaseException as raised:
        if raised is not exc:
            raise


def refused_for(b: Breakers, tenant: str, connector: str) -> float:
    """``b`` refuses the call (the breaker is open): the seconds it says remain."""
    with pytest.raises(BreakerOpen) as exc:
        b.admit(tenant, connector)
    return exc.value.remaining


def test_opens_after_threshold_and_admits_exactly_one_trial():
    clock = ManualClock()
    transitions: list[tuple[str, str, str]] = []
    b = Breakers(fail_max=3, reset_seconds=60, clock=clock, on_transition=lambda *t: transitions.append(t))
    for _ in range(3):
        assert b.admit("A", "slack_message") is False
        b.failure("A", "slack_message", trial=False)
    assert refused_for(b, "A", "slack_message") == pytest.approx(60)
    # Another tenant on the same connector is unaffected.
    assert b.admit("B", "slack_message") is False
    clock.now += 59
    assert refused_for(b, "A", "slack_message") == pytest.approx(1)
    clock.now += 1.5
    assert b.admit("A", "slack_message") is True  # the one trial
    for _ in range(5):  # every concurrent caller is refused while it runs
        refused_for(b, "A", "slack_message")
    b.failure("A", "slack_message", trial=True)  # trial failed: open again for the full period
    assert refused_for(b, "A", "slack_message") == pytest.approx(60)
    clock.now += 61
    assert b.admit("A", "slack_message") is True
    b.success("A", "slack_message", trial=True)
    assert b.state("A", "slack_message") == "closed"
    assert b.admit("A", "slack_message") is False
    assert [t[1:] for t in transitions] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_success_resets_the_consecutive_failure_count():
    b = Breakers(fail_max=3, reset_seconds=60, clock=ManualClock())
    for _ in range(2):
        b.failure("A", "x", trial=False)
    b.success("A", "x", trial=False)
    for _ in range(2):
        b.failure("A", "x", trial=False)
    assert b.state("A", "x") == "closed"


def test_a_released_trial_lets_the_next_caller_try():
    clock = ManualClock()
    b = Breakers(fail_max=1, reset_seconds=5, clock=clock)
    b.failure("A", "x", trial=False)
    clock.now += 6
    assert b.admit("A", "x") is True
    b.release("A", "x", trial=True)
    assert b.admit("A", "x") is True


def test_a_late_failure_of_a_call_admitted_before_opening_does_not_extend_the_open_period():
    clock = ManualClock()
    b = Breakers(fail_max=1, reset_seconds=10, clock=clock)
    b.failure("A", "x", trial=False)
    clock.now += 5
    b.failure("A", "x", trial=False)  # admitted while closed, reported late
    assert refused_for(b, "A", "x") == pytest.approx(5)


def test_open_keys_lists_only_unhealthy_breakers_and_healthy_entries_are_evicted():
    b = Breakers(fail_max=1, reset_seconds=10, clock=ManualClock(), max_entries=2)
    b.failure("A", "x", trial=False)
    b.failure("B", "x", trial=False)
    assert sorted(b.open_keys()) == [("A", "x", "open"), ("B", "x", "open")]


async def test_async_with_gives_the_verdict_timeouts_count_and_permanent_errors_or_cancellation_do_not():
    clock = ManualClock()
    b = Breakers(fail_max=2, reset_seconds=10, clock=clock)
    await call(b, PermanentError("400 from the target"))  # says nothing of the target's health
    await call(b, TimeoutError())
    assert b.state("A", "x") == "closed"
    await call(b, TransientError("503"))
    assert b.state("A", "x") == "open"
    with pytest.raises(BreakerOpen):
        await call(b, None)  # refused on entry: the block does not run
    clock.now += 11
    await call(b, asyncio.CancelledError())  # the half-open trial was cancelled: no verdict, the slot is free
    assert b.state("A", "x") == "half_open"
    await call(b, TimeoutError())  # the next trial timed out: open again for a full period
    assert b.state("A", "x") == "open"
    clock.now += 11
    await call(b, None)
    assert b.state("A", "x") == "closed"


async def test_a_call_that_never_reached_the_target_gives_no_verdict_and_frees_the_trial():
    clock = ManualClock()
    b = Breakers(fail_max=1, reset_seconds=10, clock=clock)
    for _ in range(3):  # a credential service that is down says nothing of the target
        await call(b, NotCalled(TransientError("credential service did not answer in time")))
    assert b.state("A", "x") == "closed"
    await call(b, TransientError("503"))
    clock.now += 11
    await call(b, NotCalled(PermanentError("template error")))  # the half-open trial, ended before its call
    assert b.state("A", "x") == "half_open"
    await call(b, None)  # the slot is free again: the next caller is the trial
    assert b.state("A", "x") == "closed"


def test_fairness_deferral_grows_with_each_deferral_and_is_capped() -> None:
    from services.executor.worker import fairness_delay

    assert [fairness_delay(1.0, n) for n in (1, 2, 3, 4, 5, 50)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert fairness_delay(0.5, 0) == 0.5


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
