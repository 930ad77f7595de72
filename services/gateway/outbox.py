"""The transactional outbox: write a change announcement with the change, relay it later.

Writers call :func:`add_change` (or :func:`add_message`) inside the
transaction of the change.  A trigger (migration 0201) sends
``NOTIFY ipaas_outbox`` on insert, which wakes :class:`OutboxRelay` at once;
a short poll covers a lost listener connection.

The relay publishes pending rows in id order with ``Nats-Msg-Id``
``outbox:<id>`` (so a row published twice is stored once) and marks them
published.  Several gateway replicas may run it: each pass takes a
transaction-level advisory lock, so one replica relays at a time and the
order holds.  If NATS is down, the pass stops at the first failure and the
relay retries with exponential backoff; nothing is lost, since a row stays
pending until JetStream acknowledged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import asyncpg
import orjson
from opentelemetry import propagate

from libs.common.bus import Bus, BusUnavailable
from libs.common.models.events import WorkflowChanged, workflow_changed_subject

log = logging.getLogger(__name__)

CHANNEL = "ipaas_outbox"
RELAY_LOCK_KEY = 0x1F0A5_0201


async def add_message(conn: asyncpg.Connection, subject: str, payload: dict[str, Any],
                      *, msg_id: str | None = None, headers: dict[str, str] | None = None) -> int:
    """Queue one message; ``msg_id`` defaults to ``outbox:<id>``.

    The current trace context is stored with it, so the relay's publish continues the writer's trace.
    """
    if headers is None:
        headers = {}
        propagate.inject(headers)
    row_id: int = await conn.fetchval(
        """INSERT INTO outbox (subject, msg_id, payload, headers)
           VALUES ($1, COALESCE($2, ''), $3::jsonb, $4::jsonb) RETURNING id""",
        subject, msg_id, payload, headers or None,
    )
    if msg_id is None:
        await conn.execute("UPDATE outbox SET msg_id = $2 WHERE id = $1", row_id, f"outbox:{row_id}")
    return row_id


async def add_change(conn: asyncpg.Connection, *, tenant_id: uuid.UUID, workflow_id: uuid.UUID,
                     version: int, change: str, is_active: bool, deleted: bool = False) -> int:
    event = WorkflowChanged(tenant_id=tenant_id, workflow_id=workflow_id, version=version, change=change,
                            is_active=is_active, deleted=deleted)
    return await add_message(conn, workflow_changed_subject(tenant_id, workflow_id),
                             event.model_dump(mode="json"))


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, bus: Bus, dsn: str, *, batch: int, poll_seconds: float,
                 max_backoff_seconds: float, publish_timeout: float) -> None:
        self._pool = pool
        self._bus = bus
        self._dsn = dsn
        self._batch = batch
        self._poll = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._publish_timeout = publish_timeout
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen())
        backoff = 0.1
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    more = await self.relay_once()
                except (BusUnavailable, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("outbox relay pass failed; retrying",
                                extra={"error": type(exc).__name__, "retry_in_s": backoff})
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                except Exception:  # noqa: BLE001 - the relay must outlive any one bad pass
                    log.exception("outbox relay pass crashed; retrying", extra={"retry_in_s": backoff})
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                backoff = 0.1
                if not more:
                    await self._sleep(self._poll, wakeable=True)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def relay_once(self) -> bool:
        """One pass; True if a full batch went out (there may be more)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK_KEY):
                return False  # another replica is relaying
            rows = await conn.fetch(
                """SELECT id, subject, msg_id, payload, headers FROM outbox
                   WHERE published_at IS NULL ORDER BY id LIMIT $1""",
                self._batch,
            )
            done: list[int] = []
            failure: BusUnavailable | None = None
            for row in rows:
                try:
                    await self._bus.publish(row["subject"], orjson.dumps(row["payload"]), msg_id=row["msg_id"],
                                            headers=row["headers"], timeout=self._publish_timeout)
                except BusUnavailable as exc:
                    failure = exc
                    break
                done.append(row["id"])
            if done:
                await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", done)
        # Committed: rows published so far stay marked even when the bus failed midway.
        self.published += len(done)
        if failure is not None:
            raise failure
        return len(rows) == self._batch

    async def _sleep(self, seconds: float, *, wakeable: bool = False) -> None:
        waiter = self._wake if wakeable else self._stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=seconds)

    async def _listen(self) -> None:
        """Keep a LISTEN connection open; every notification wakes the relay."""
        delay = 0.5
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=closed: ev.set())
                await conn.add_listener(CHANNEL, lambda *_a: self._wake.set())
                self._wake.set()  # catch up on anything written while not listening
                delay = 0.5
                await closed.wait()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox listener down; polling meanwhile", extra={"error": type(exc).__name__})
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close(timeout=2)
            await self._sleep(delay)
            delay = min(delay * 2, 10.0)
