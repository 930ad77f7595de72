"""Drop cached webhook targets when the ``workflows.changed`` feed announces a change.

A plain core-NATS subscription on the change subjects: the relay's JetStream
publishes reach it too.  Messages are tiny and the handler only pops a dict
entry, so it never falls behind.  After a reconnect the feed may have gaps,
so the whole cache is cleared.
"""

from __future__ import annotations

import logging
import uuid

from libs.common.bus import Bus, Message, Subscription
from services.gateway.hooks.cache import WorkflowCache

log = logging.getLogger(__name__)


async def subscribe_invalidations(bus: Bus, cache: WorkflowCache) -> Subscription:
    async def on_change(msg: Message) -> None:
        last = msg.subject.rsplit(".", 1)[-1]
        try:
            cache.invalidate(uuid.UUID(last))
        except ValueError:
            log.warning("change with a malformed subject", extra={"subject": msg.subject})

    subject = bus.settings.changes_subjects
    return await bus.subscribe(subject, on_change, pending_msgs_limit=1_000_000)


def clear_on_reconnect(bus: Bus, cache: WorkflowCache) -> None:
    """Clear the cache after every reconnect (one of the bus's reconnect listeners)."""

    async def on_reconnect() -> None:
        cache.clear()
        log.info("change feed reconnected; webhook cache cleared")

    bus.on_reconnect(on_reconnect)
