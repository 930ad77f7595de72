"""The workflow change feed: an ordered consumer per replica, new messages only.

Every replica sees every change (this is not a shared work queue).  nats-py's
ordered consumer recreates itself after a gap or missed heartbeats, resuming
after the last stream sequence it delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from libs.common.bus import Bus, Message, Subscription
from libs.common.models.events import WorkflowChanged

log = logging.getLogger(__name__)

ChangeHandler = Callable[[WorkflowChanged], Awaitable[None]]
# A failed apply (Postgres unreachable) is retried this many times, then left
# to the periodic resync.
APPLY_ATTEMPTS = 5


def parse_change(subject: str, data: bytes) -> WorkflowChanged | None:
    """The change, or, for a payload we cannot read, a bare "re-read this workflow" from the subject."""
    with contextlib.suppress(ValidationError):
        return WorkflowChanged.model_validate_json(data)
    parts = subject.split(".")
    if len(parts) != 4:
        return None
    try:
        tenant_id, workflow_id = uuid.UUID(parts[2]), uuid.UUID(parts[3])
    except ValueError:
        return None
    log.warning("unreadable workflow change payload; re-reading the workflow", extra={"subject": subject})
    return WorkflowChanged(tenant_id=tenant_id, workflow_id=workflow_id, version=0, change="unknown", is_active=True)


class ChangeFeed:
    def __init__(self, bus: Bus, handler: ChangeHandler, *, on_failure: Callable[[], None]) -> None:
        self._bus = bus
        self._handler = handler
        self._on_failure = on_failure
        self._sub: Subscription | None = None

    @property
    def active(self) -> bool:
        return self._sub is not None

    async def start(self) -> None:
        s = self._bus.settings
        self._sub = await self._bus.subscribe_ordered(
            s.changes_subjects, self._on_msg, stream=s.changes_stream, idle_heartbeat=2.0
        )

    async def stop(self) -> None:
        if self._sub is None:
            return
        sub, self._sub = self._sub, None
        try:
            await sub.unsubscribe()
        except Exception:
            log.debug("unsubscribe failed", exc_info=True)

    async def _on_msg(self, msg: Message) -> None:
        change = parse_change(msg.subject, msg.data)
        if change is None:
            log.warning("ignoring a workflow change with no workflow id", extra={"subject": msg.subject})
            return
        delay = 0.2
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                await self._handler(change)
                return
            except Exception as exc:  # noqa: BLE001 - a bad change must not stop the feed
                log.warning(
                    "applying a workflow change failed",
                    extra={"workflow_id": str(change.workflow_id), "attempt": attempt, "error": type(exc).__name__},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        self._on_failure()
