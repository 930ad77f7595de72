"""NATS JetStream helpers: connect, provision, publish, consume."""

from libs.common.bus.client import Bus, PublishResult
from libs.common.bus.errors import BusError, BusUnavailable, MessageRejected, PublishRejected, StreamFull

__all__ = ["Bus", "BusError", "BusUnavailable", "MessageRejected", "PublishRejected", "PublishResult", "StreamFull"]
