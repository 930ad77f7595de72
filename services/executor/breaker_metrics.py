"""Breaker state per (tenant, connector), with bounded cardinality.

Read from the breakers' table at scrape time: only breakers that are not closed are exported
(``ipaas_executor_breaker_state{tenant, connector, state}`` = 1), at most ``MAX_SHOWN`` of them
(the oldest in the table first); how many more there were is
``ipaas_executor_breakers_unlisted``.  A healthy (tenant, connector) has no series at all, so
the number of series follows the number of unhealthy pairs, never the number of tenants.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.executor.breakers import Breakers

MAX_SHOWN = 100


class BreakerStateCollector(Collector):
    def __init__(self, breakers: Breakers, max_shown: int = MAX_SHOWN) -> None:
        self._breakers = breakers
        self._max = max_shown

    def collect(self) -> Iterable[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "ipaas_executor_breaker_state",
            "1 for each (tenant, connector) breaker that is open or half-open on this replica",
            labels=["tenant", "connector", "state"],
        )
        unhealthy = self._breakers.open_keys()
        for tenant, connector, now in unhealthy[: self._max]:
            state.add_metric([tenant, connector, now], 1.0)
        yield state
        yield GaugeMetricFamily(
            "ipaas_executor_breakers_unlisted",
            "Open or half-open breakers left out of ipaas_executor_breaker_state (over its cap)",
            value=float(max(0, len(unhealthy) - self._max)),
        )

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []
