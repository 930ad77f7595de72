"""The executor's JetStream readers through the bus: the fairness backlog view and the stats gauges.

Real NATS and Postgres: the readers ask ``STREAM.INFO`` (with a subject filter) and
``CONSUMER.INFO`` through :meth:`Bus.stream_info` / :meth:`Bus.consumer_info`.
"""

from __future__ import annotations

import uuid

import asyncpg

from libs.common.bus import Bus
from libs.common.http.metrics import Metrics
from services.executor.deferred import Waker
from services.executor.fairness import BacklogView, TenantSlots
from services.executor.metrics import ExecutorMetrics
from services.executor.stats import StatsReader


async def _publish(bus: Bus, tenant: str, n: int) -> None:
    for i in range(n):
        await bus.publish(f"events.{tenant}.{uuid.uuid4()}", b"{}", msg_id=f"{tenant}:{i}")


async def test_backlog_view_names_the_tenants_with_events_waiting(bus: Bus) -> None:
    s = bus.settings
    slots = TenantSlots(8, headroom=0, patience=1.0)
    view = BacklogView(bus, slots, stream=s.events_stream, subjects=s.events_subjects, interval=1, busy=lambda: True)
    assert await view.read_once() == frozenset()
    await _publish(bus, "tenant-a", 2)
    await _publish(bus, "tenant-b", 1)
    assert await view.read_once() == frozenset({"tenant-a", "tenant-b"})


async def test_stats_reader_sets_stream_and_consumer_gauges(bus: Bus, pool: asyncpg.Pool) -> None:
    s = bus.settings
    # The session's streams may hold what earlier tests left: the gauges are read against what was there.
    events_before = int((await bus.stream_info(s.events_stream)).state.messages or 0)
    dlq_before = int((await bus.stream_info(s.dlq_stream)).state.messages or 0)
    await bus.ensure_consumer(s.events_stream, "stats-test")
    await _publish(bus, "tenant-a", 3)
    registry = Metrics("executor")
    metrics = ExecutorMetrics(registry)
    waker = Waker(pool, bus, batch=8, poll_seconds=1, publish_timeout=5)
    reader = StatsReader(
        bus,
        waker,
        metrics,
        streams=[s.events_stream, s.dlq_stream],
        events_stream=s.events_stream,
        consumer="stats-test",
        interval=60,
    )
    await reader.read_once()

    def sample(name: str, **labels: str) -> float | None:
        return registry.registry.get_sample_value(name, labels)

    assert sample("ipaas_stream_messages", stream=s.events_stream) == events_before + 3
    assert sample("ipaas_stream_messages", stream=s.dlq_stream) == dlq_before
    assert (sample("ipaas_stream_bytes", stream=s.events_stream) or 0) > 0
    assert sample("ipaas_executor_consumer_pending") == events_before + 3  # a new consumer: every message
    assert sample("ipaas_executor_consumer_ack_pending") == 0
    assert sample("ipaas_executor_parked_events") == 0
