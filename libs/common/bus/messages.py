"""The types a service handles when it receives from the bus, named here so nothing else imports nats-py.

A :data:`Message` is what a subscription callback or a pull consumer's handler gets: its
``subject``, ``data``, ``headers`` and ``reply``, and for JetStream messages ``ack()``,
``nak(delay=...)``, ``term()``, ``in_progress()`` and ``metadata``.  A :data:`Subscription`
is what :meth:`Bus.subscribe` and :meth:`Bus.subscribe_ordered` return; a service only
``unsubscribe()``\\ s or ``drain()``\\ s it.  :data:`StreamInfo` and :data:`ConsumerInfo` are
what :meth:`Bus.stream_info` and :meth:`Bus.consumer_info` return.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as _Subscription
from nats.js.api import ConsumerInfo as _ConsumerInfo
from nats.js.api import StreamInfo as _StreamInfo

Message: TypeAlias = Msg
Subscription: TypeAlias = _Subscription
StreamInfo: TypeAlias = _StreamInfo
ConsumerInfo: TypeAlias = _ConsumerInfo

MessageHandler: TypeAlias = Callable[[Message], Awaitable[None]]
ReconnectListener: TypeAlias = Callable[[], Awaitable[None]]
