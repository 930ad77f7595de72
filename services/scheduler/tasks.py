"""Stopping the scheduler's background tasks for sure (see :func:`libs.common.tasks.cancel_until_done`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from libs.common.tasks import cancel_until_done

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` (again and again if need be) and wait until all are done, up to 5 s."""
    pending = await cancel_until_done(tasks, every=0.05, rounds=100)
    if pending:
        log.warning("background tasks did not stop", extra={"tasks": sorted(t.get_name() for t in pending)})
