"""Poll every instance's ``/health/ready`` until it answers 200 or time runs out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import aiohttp

from libs.common.tasks import wait_at_most

POLL_SECONDS = 0.25


async def is_ready(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(f"{url}/health/ready", timeout=aiohttp.ClientTimeout(total=2)) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


async def wait_all_ready(
    urls: dict[str, str], timeout: float, announce: Callable[[str], None], stop: asyncio.Event
) -> Sequence[str]:
    """Wait until every URL is ready; returns the names that are still not ready (empty on success)."""
    pending = dict(urls)
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while pending and time.monotonic() < deadline and not stop.is_set():
            results = await asyncio.gather(*(is_ready(session, url) for url in pending.values()))
            for (name, url), ok in zip(list(pending.items()), results, strict=True):
                if ok:
                    announce(f"{name} is ready at {url}")
                    del pending[name]
            if pending:
                await wait_at_most(stop, POLL_SECONDS)
    return sorted(pending)
