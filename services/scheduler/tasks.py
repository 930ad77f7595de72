"""Stopping background tasks for sure.

On Python 3.11 ``asyncio.wait_for`` (used inside nats-py's request and
asyncpg) returns the result instead of raising when a cancellation arrives
in the same loop turn as the result: the task swallows the cancellation and
carries on, and a shutdown that cancels once and awaits can hang.  So cancel
again until each task is done, within a bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[None]], *, timeout: float = 5.0, retry_seconds: float = 0.05
) -> None:
    """Cancel ``tasks`` (again and again if need be) and wait until all are done, up to ``timeout``."""
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry_seconds)
    if pending:
        log.warning("background tasks did not stop", extra={"tasks": sorted(t.get_name() for t in pending)})
