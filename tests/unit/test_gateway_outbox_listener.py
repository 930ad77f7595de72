"""The outbox relay's LISTEN loop outlives a connection that fails and then cannot be closed."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from libs.common.bus import Bus
from services.gateway.outbox import OutboxRelay
from tests.helpers.wait import wait_until


class _BrokenConnection:
    """A LISTEN connection whose ``LISTEN`` fails and whose close then times out (a server gone quiet)."""

    def add_termination_listener(self, _callback: Any) -> None:
        pass

    async def add_listener(self, _channel: str, _callback: Any) -> None:
        raise asyncpg.InterfaceError("connection lost")

    def is_closed(self) -> bool:
        return False

    async def close(self, *, timeout: float) -> None:
        raise TimeoutError


async def test_a_close_that_times_out_does_not_end_the_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    connects = 0

    async def connect(_dsn: str) -> _BrokenConnection:
        nonlocal connects
        connects += 1
        return _BrokenConnection()

    monkeypatch.setattr(asyncpg, "connect", connect)  # the module the relay calls it through
    relay = OutboxRelay(
        cast(asyncpg.Pool, None),
        cast(Bus, None),
        "postgresql://unused",
        batch=1,
        poll_seconds=1,
        max_backoff_seconds=1,
        publish_timeout=1,
        max_attempts=1,
        registry=CollectorRegistry(),
    )
    listener = asyncio.create_task(relay._listen())
    await wait_until(lambda: connects >= 2 or listener.done(), timeout=5)
    relay.stop()
    await listener  # raises here if a failed close ended the loop
    assert connects >= 2  # it connected again after the failed close
