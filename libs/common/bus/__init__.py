"""NATS JetStream helpers: connect, publish, consume; provisioning and the identities' permissions."""

from libs.common.bus.client import Bus
from libs.common.bus.errors import (
    BusError,
    BusMisconfigured,
    BusUnavailable,
    MessageRejected,
    NotProvisioned,
    PublishRejected,
    StreamConflict,
    StreamFull,
)
from libs.common.bus.results import PublishResult

__all__ = [
    "Bus",
    "BusError",
    "BusMisconfigured",
    "BusUnavailable",
    "MessageRejected",
    "NotProvisioned",
    "PublishRejected",
    "PublishResult",
    "StreamConflict",
    "StreamFull",
]
