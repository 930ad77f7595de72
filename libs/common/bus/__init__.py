"""NATS JetStream helpers: connect, publish, consume; provisioning and the identities' permissions.

The only door to NATS: services use :class:`Bus` and the types named here, never nats-py itself.
"""

from libs.common.bus.client import Bus
from libs.common.bus.errors import (
    BusError,
    BusMisconfigured,
    BusUnavailable,
    MessageRejected,
    MessageTooLarge,
    NoResponders,
    NotProvisioned,
    PublishRejected,
    RequestTimeout,
    StreamConflict,
    StreamFull,
)
from libs.common.bus.messages import ConsumerInfo, Message, MessageHandler, StreamInfo, Subscription
from libs.common.bus.results import PublishResult

__all__ = [
    "Bus",
    "BusError",
    "BusMisconfigured",
    "BusUnavailable",
    "ConsumerInfo",
    "Message",
    "MessageHandler",
    "MessageRejected",
    "MessageTooLarge",
    "NoResponders",
    "NotProvisioned",
    "PublishRejected",
    "PublishResult",
    "RequestTimeout",
    "StreamConflict",
    "StreamFull",
    "StreamInfo",
    "Subscription",
]
