"""Reconnect listeners: the client's one reconnect callback, fanned out.

nats-py takes a single ``reconnected_cb`` when it connects.  :meth:`Bus.connect` hands it
:meth:`ReconnectListeners.fire`, and a service adds its own with :meth:`Bus.on_reconnect`
(the gateway clears its webhook cache, whose change feed may have had gaps).  Listeners run
one after another, in the order added; one that raises is logged and the next still runs.
"""

from __future__ import annotations

import logging

from libs.common.bus.messages import ReconnectListener

log = logging.getLogger(__name__)


class ReconnectListeners:
    def __init__(self) -> None:
        self._listeners: list[ReconnectListener] = []

    def add(self, listener: ReconnectListener) -> None:
        self._listeners.append(listener)

    async def fire(self) -> None:
        log.info("nats reconnected")
        for listener in list(self._listeners):
            try:
                await listener()
            except Exception:
                log.exception("reconnect listener failed")
