"""A publish as a predicate for ``wait_until``: for tests that wait for NATS to take messages again after an outage."""

from __future__ import annotations

from libs.common.bus import Bus, BusUnavailable


async def published(bus: Bus, subject: str, payload: bytes, *, msg_id: str, timeout: float = 1.0) -> bool:
    """Whether publishing ``payload`` got its PubAck within ``timeout`` seconds (False when the bus is unavailable)."""
    try:
        await bus.publish(subject, payload, msg_id=msg_id, timeout=timeout)
        return True
    except BusUnavailable:
        return False
