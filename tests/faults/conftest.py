"""Fixtures shared by the fault tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from tests.helpers.ledger import FaultStack, fault_stack
from tests.helpers.services import ServiceProcess


@pytest.fixture
async def stack(
    service: Callable[..., ServiceProcess], db: asyncpg.Connection, nats_url: str, database_url: str
) -> AsyncIterator[FaultStack]:
    """A :class:`FaultStack` on this test's NATS and database; the test starts the processes it needs."""
    async with fault_stack(service, db, nats_url, database_url) as started:
        yield started
