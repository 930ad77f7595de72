"""One loop that keeps every held message and its lease alive, from the moment it is taken to its ack.

Every ``every / 2`` seconds the loop looks at the messages held for ``every``
seconds or more since their last beat: each gets ``in_progress()`` (so the
consumer's ``ack_wait`` never passes while a replica works on it), and the
leases of their claimed events are extended in one batched statement.  The
beat starts when the worker takes the message, before the claim, so no part
of the claim-to-ack span is uncovered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

from libs.common.bus import Message
from libs.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Renew = Callable[[list[uuid.UUID]], Awaitable[None]]


class Held:
    __slots__ = ("event_id", "last", "msg")

    def __init__(self, msg: Message, now: float) -> None:
        self.msg = msg
        self.last = now
        self.event_id: uuid.UUID | None = None  # set once the event's row is claimed


class Heartbeats:
    def __init__(self, every: float, renew: Renew | None = None) -> None:
        self._every = every
        self._renew = renew
        self._held: dict[int, Held] = {}
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._held)

    @contextlib.contextmanager
    def hold(self, msg: Message) -> Iterator[Held]:
        key = id(msg)
        held = self._held[key] = Held(msg, time.monotonic())
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())
        try:
            yield held
        finally:
            self._held.pop(key, None)

    async def _loop(self) -> None:
        while self._held:
            await asyncio.sleep(self._every / 2)
            now = time.monotonic()
            due = [h for h in list(self._held.values()) if now - h.last >= self._every]
            leases: list[uuid.UUID] = []
            for held in due:
                held.last = now
                with contextlib.suppress(Exception):
                    await held.msg.in_progress()
                if held.event_id is not None:
                    leases.append(held.event_id)
            if leases and self._renew is not None:
                try:
                    await self._renew(leases)
                except Exception as exc:  # noqa: BLE001 - the next beat tries again; in_progress still went out
                    log.warning("lease renewal failed", extra={"error": type(exc).__name__, "events": len(leases)})

    async def close(self) -> None:
        await cancel_and_wait(self._task)
