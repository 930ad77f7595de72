"""Which replica fires a schedule first: replicas announce themselves, and each workflow has one owner.

Every replica still fires every slot: that is what makes the loss of a replica
harmless, and JetStream keeps one message per slot.  But they need not all fire
at the same instant.  Each replica publishes a heartbeat (its random id) every
``heartbeat_seconds`` on ``<inbox prefix>.replicas`` (core NATS, inside the
scheduler identity's own inbox namespace, so no other identity can send or read
it) and listens there; a replica not heard from for three heartbeats is gone.
The owner of a workflow is ``live[workflow_id % len(live)]`` over the sorted ids
of the live replicas: it fires at the slot, the others ``backup_delay_seconds``
later (see :mod:`services.scheduler.engine`), by which time their publishes
are duplicates that JetStream drops.  The work of one slot is therefore split
between the replicas instead of being done by each of them at once.

A replica that hears no one (alone, starting, or cut off from NATS) owns every
workflow.  While replicas disagree (one joined or left within the last few
seconds), a slot may be fired at its time by two of them, or by its owner only
after the delay: never lost, never stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from libs.common.bus import Bus, Message, Subscription
from libs.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# A replica not heard from for this many heartbeats is gone.
MISSED_HEARTBEATS = 3


class Peers:
    def __init__(
        self, bus: Bus, subject: str, *, heartbeat_seconds: float, on_change: Callable[[int], None] | None = None
    ) -> None:
        self._bus = bus
        self._on_change = on_change
        self._subject = subject
        self._heartbeat = heartbeat_seconds
        self.id = uuid.uuid4().hex
        self._seen: dict[str, float] = {}  # replica id -> loop time last heard
        self._live: list[str] = [self.id]
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def live(self) -> list[str]:
        """Sorted ids of the replicas heard from lately, this one included."""
        return list(self._live)

    @property
    def started(self) -> bool:
        return self._sub is not None

    def owns(self, workflow_id: uuid.UUID) -> bool:
        live = self._live
        return len(live) == 1 or live[workflow_id.int % len(live)] == self.id

    async def start(self) -> None:
        self._sub = await self._bus.subscribe(self._subject, self._on_heartbeat)
        self._task = asyncio.create_task(self._run(), name="scheduler-peers")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._sub is not None:
            with contextlib.suppress(Exception):  # NATS may be gone already: nothing to undo
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_heartbeat(self, msg: Message) -> None:
        peer = msg.data.decode(errors="replace")[:64]
        if peer:
            known = peer in self._seen
            self._seen[peer] = asyncio.get_running_loop().time()
            if not known:
                self._refresh()

    async def _run(self) -> None:
        payload = self.id.encode()
        while True:
            with contextlib.suppress(Exception):  # NATS away: the others drop this replica, and it stays alone
                await self._bus.publish_core(self._subject, payload, flush=False)
            self._refresh()
            await asyncio.sleep(self._heartbeat)

    def _refresh(self) -> None:
        cutoff = asyncio.get_running_loop().time() - MISSED_HEARTBEATS * self._heartbeat
        self._seen = {peer: t for peer, t in self._seen.items() if t >= cutoff}
        live = sorted({*self._seen, self.id})
        if live != self._live:
            log.info("scheduler replicas changed", extra={"replicas": len(live), "this": self.id[:8]})
            self._live = live
            if self._on_change is not None:
                self._on_change(len(live))
