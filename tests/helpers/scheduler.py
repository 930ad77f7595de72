"""What scheduler tests share: a schedule's definition, the events stored in EVENTS, a workflow change
as the gateway's outbox relay publishes it, and the environment of a scheduler process.

Replicas in this process come from the ``schedulers`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope
from services.gateway.outbox import workflow_change


def schedule_definition(name: str = "tick", **trigger: Any) -> dict[str, Any]:
    """A workflow whose trigger is ``{"type": "schedule", **trigger}`` and whose action goes nowhere (these
    tests look at what the scheduler publishes, not at what runs)."""
    action = {"type": "http_request", "config": {"url": "http://127.0.0.1:9/hook"}}
    return {"name": name, "trigger": {"type": "schedule", **trigger}, "action": action}


async def stored_events(bus: Bus, workflow_id: uuid.UUID | None = None) -> list[tuple[dict[str, str], EventEnvelope]]:
    """(headers, envelope) of every message in EVENTS in stream order (only ``workflow_id``'s when given)."""
    info = await bus.js.stream_info("EVENTS")
    found: list[tuple[dict[str, str], EventEnvelope]] = []
    if not info.state.messages:
        return found
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await bus.js.get_msg("EVENTS", seq)
        env = EventEnvelope.model_validate_json(msg.data or b"")
        if workflow_id is None or env.workflow_id == workflow_id:
            found.append((dict(msg.headers or {}), env))
    return found


async def publish_change(
    bus: Bus,
    tenant_id: uuid.UUID,
    workflow_id: uuid.UUID,
    version: int,
    change: str,
    *,
    is_active: bool = True,
    deleted: bool = False,
) -> None:
    """What the gateway's outbox relay publishes after a workflow change."""
    subject, payload = workflow_change(tenant_id, workflow_id, version, change, is_active=is_active, deleted=deleted)
    await bus.publish(subject, json.dumps(payload).encode(), msg_id=f"outbox:{uuid.uuid4()}")


def at(minute: int, second: float = 0.5) -> datetime:
    """12:<minute>:<second> on the day the scheduler tests' manual clocks run (half a second past by default)."""
    return datetime(2026, 5, 1, 12, minute, int(second), int(round(second % 1 * 1_000_000)), tzinfo=UTC)


T0 = at(0, 30)  # where a manual clock starts


def scheduler_env(nats_url: str, database_url: str, **overrides: str) -> dict[str, str]:
    """Environment for ``python -m services.scheduler``, schedules down to one second allowed."""
    return {"NATS_URL": nats_url, "DATABASE_URL": database_url, "IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS": "1", **overrides}
