"""``nats_publish``: an event fans out to other systems on the same NATS, under the tenant's own subjects.

The message goes to ``out.<tenant_id>.<subject>`` (core NATS), its body the
rendered ``payload`` as JSON, with ``Idempotency-Key: <event_id>`` so a
subscriber can drop the copy a retry may send. The executor's NATS identity
may publish under ``out.>`` only (``libs/common/bus/permissions.py``), and a
tenant names only the part after its own id, so it cannot reach another
tenant's subjects or the platform's. Delivered means the server took it (a
flush round trip); core NATS keeps nothing for a subscriber that is not
there, as its publish-subscribe contract says.
"""

from __future__ import annotations

from typing import Any

import orjson

from libs.common.bus import Bus, BusUnavailable
from libs.common.bus.permissions import OUTBOUND_PREFIX
from services.executor.connectors.base import ActionCall
from services.executor.connectors.configs import NatsMessage
from services.executor.errors import PermanentError, TransientError


def outbound_subject(tenant_id: str, subject: str) -> str:
    return f"{OUTBOUND_PREFIX}.{tenant_id}.{subject}"


class NatsPublishConnector:
    name = "nats_publish"

    def __init__(self, bus: Bus, *, max_bytes: int) -> None:
        self._bus = bus
        self._max_bytes = max_bytes

    async def __call__(self, call: ActionCall[NatsMessage]) -> dict[str, Any]:
        subject = outbound_subject(call.tenant_id, call.config.subject)
        data = orjson.dumps(call.config.payload, default=str)
        if len(data) > self._max_bytes:
            raise PermanentError(f"nats_publish payload is {len(data)} bytes, over {self._max_bytes}")
        try:
            await self._bus.publish_core(subject, data, headers={"Idempotency-Key": call.event_id})
        except BusUnavailable as exc:
            raise TransientError(f"nats_publish: {exc}") from exc
        return {"subject": subject, "bytes": len(data)}
