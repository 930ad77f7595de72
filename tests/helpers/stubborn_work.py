"""Work that goes on after being cancelled, as when a 3.11 ``asyncio.wait_for`` inside returns its result
instead of raising: for the tests of code that must cancel such work again."""

from __future__ import annotations

import asyncio


async def stubborn_work(stop: asyncio.Event, cancels_ignored: int) -> None:
    """Works until ``stop``; the first ``cancels_ignored`` cancellations are lost."""
    ignored = 0
    while not stop.is_set():
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if ignored >= cancels_ignored:
                raise
            ignored += 1
