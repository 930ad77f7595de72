"""NATS JetStream helpers: connect, publish, consume; provisioning and the identities' permissions."""

from libs.common.bus.client import Bus, PublishResult
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

__all__ = ["Bus", "BusError", "BusMisconfigured", "BusUnavailable", "MessageRejected", "NotProvisioned",
           "PublishRejected", "PublishResult", "StreamConflict", "StreamFull"]
