"""What fits in one NATS message: the bus's own measure (:mod:`libs.common.bus.wire`)."""

from libs.common.bus.wire import message_size

__all__ = ["message_size"]
