"""A bounded pull consumer of the EVENTS stream running as a task for the length of a ``with`` block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from libs.common.bus import Bus
from libs.common.bus.consumer import BoundedPullConsumer
from libs.common.bus.messages import MessageHandler


@asynccontextmanager
async def running_consumer(
    bus: Bus, durable: str, handler: MessageHandler, *, grace: float = 2.0, **options: Any
) -> AsyncIterator[BoundedPullConsumer]:
    """``BoundedPullConsumer(bus, stream="EVENTS", durable=durable, handler=handler, **options)``, run as a task;
    on the way out it is drained (``grace`` seconds) and its task cancelled."""
    consumer = BoundedPullConsumer(bus, stream="EVENTS", durable=durable, handler=handler, **options)
    runner = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        await consumer.drain(grace)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
