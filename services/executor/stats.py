"""Gauges read on a timer: stream fullness, consumer lag, parked events.

Read from JetStream (``STREAM.INFO`` and ``CONSUMER.INFO``) and Postgres every
``IPAAS_EXECUTOR_STATS_INTERVAL_SECONDS``; a failed read keeps the last values.
"""

from __future__ import annotations

import asyncio
import logging

from libs.common.bus import Bus
from services.executor.deferred import Waker
from services.executor.metrics import ExecutorMetrics

log = logging.getLogger(__name__)


class StatsReader:
    def __init__(
        self,
        bus: Bus,
        waker: Waker,
        metrics: ExecutorMetrics,
        *,
        streams: list[str],
        events_stream: str,
        consumer: str,
        interval: float,
    ) -> None:
        self._bus, self._waker, self._metrics = bus, waker, metrics
        self._streams, self._events, self._consumer = streams, events_stream, consumer
        self._interval = interval

    async def run(self) -> None:
        while True:
            try:
                await self.read_once()
            except Exception as exc:  # noqa: BLE001 - gauges keep their last values until the next read
                log.debug("stats read failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self._interval)

    async def read_once(self) -> None:
        for name in self._streams:
            info = await self._bus.stream_info(name)
            state, config = info.state, info.config
            self._metrics.stream_messages.labels(name).set(state.messages)
            self._metrics.stream_bytes.labels(name).set(state.bytes)
            limit = config.max_bytes or -1
            self._metrics.stream_fill.labels(name).set(state.bytes / limit if limit > 0 else 0.0)
        consumer = await self._bus.consumer_info(self._events, self._consumer)
        self._metrics.consumer_pending.set(consumer.num_pending or 0)
        self._metrics.consumer_ack_pending.set(consumer.num_ack_pending or 0)
        self._metrics.parked.set(await self._waker.count())
