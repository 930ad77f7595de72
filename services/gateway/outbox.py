"""The transactional outbox: write a change announcement with the change, relay it later.

Writers call :func:`add_message` (for a workflow's change, with
:func:`workflow_change`) inside the transaction of the change.  A trigger (migration 0201) sends
``NOTIFY ipaas_outbox`` on insert, which wakes :class:`OutboxRelay` at once;
a short poll covers a lost listener connection.

The relay publishes pending rows in id order with ``Nats-Msg-Id``
``outbox:<id>`` (so a row published twice is stored once) and marks them
published.  Several gateway replicas may run it: each pass takes a
transaction-level advisory lock, so one replica relays at a time and the
order holds.  If NATS is down (or a stream is full), the pass stops at the
first failure and the relay retries with exponential backoff; nothing is
lost, since a row stays pending until JetStream acknowledged it.

One row never holds up the others (migration 0202): a row that can never be
published (JetStream refuses it for good, its subject is malformed, it is
over the server's size limit, or its publish failed in an unexpected way
``max_attempts`` times) is set aside: ``failed_at`` and ``error`` are
recorded, it leaves the pending scan, it is counted in
``ipaas_gateway_outbox_failed_total`` and logged with its id, and the rows
behind it go on.  What happens to each outcome is decided by the pure
:func:`services.gateway.outbox_rows.decide`.  Set-aside rows keep their
payload; an operator retries one by clearing ``failed_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from functools import partial
from typing import Any

import asyncpg
from opentelemetry import propagate
from prometheus_client import CollectorRegistry, Counter, Gauge

from libs.common.bus import Bus, BusUnavailable
from libs.common.models.events import WorkflowChanged, workflow_changed_subject
from libs.common.tasks import Wakeable, wait_at_most
from services.gateway.outbox_rows import Decision, Fate, decide, prepare

log = logging.getLogger(__name__)

CHANNEL = "ipaas_outbox"
RELAY_LOCK_KEY = 0x1F0A5_0201


async def add_message(
    conn: asyncpg.Connection,
    subject: str,
    payload: dict[str, Any],
    *,
    msg_id: str | None = None,
) -> int:
    """Queue one message; ``msg_id`` defaults to ``outbox:<id>``.

    The current trace context is stored with it, so the relay's publish continues the writer's trace.
    """
    headers: dict[str, str] = {}
    propagate.inject(headers)
    row_id: int = await conn.fetchval(
        """INSERT INTO outbox (subject, msg_id, payload, headers)
           VALUES ($1, COALESCE($2, ''), $3::jsonb, $4::jsonb) RETURNING id""",
        subject,
        msg_id,
        payload,
        headers or None,
    )
    if msg_id is None:
        await conn.execute("UPDATE outbox SET msg_id = $2 WHERE id = $1", row_id, f"outbox:{row_id}")
    return row_id


def workflow_change(
    tenant_id: uuid.UUID,
    workflow_id: uuid.UUID,
    version: int,
    change: str,
    *,
    is_active: bool,
    deleted: bool = False,
) -> tuple[str, dict[str, Any]]:
    """The subject and payload that announce a change of one workflow (a :class:`WorkflowChanged`)."""
    event = WorkflowChanged(
        tenant_id=tenant_id,
        workflow_id=workflow_id,
        version=version,
        change=change,
        is_active=is_active,
        deleted=deleted,
    )
    return workflow_changed_subject(tenant_id, workflow_id), event.model_dump(mode="json")


PENDING_SQL = """
SELECT id, subject, msg_id, payload::text AS payload, headers::text AS headers, attempts FROM outbox
WHERE published_at IS NULL AND failed_at IS NULL ORDER BY id LIMIT $1
"""
SET_ASIDE_SQL = "UPDATE outbox SET failed_at = now(), error = $2, attempts = attempts + 1 WHERE id = $1"
ATTEMPT_SQL = "UPDATE outbox SET error = $2, attempts = attempts + 1 WHERE id = $1"
SET_ASIDE_COUNT_SQL = "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL AND published_at IS NULL"
GAUGE_REFRESH_SECONDS = 30.0
_TRANSIENT = (BusUnavailable, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        counter = partial(Counter, registry=registry)
        self.published = counter("ipaas_gateway_outbox_published_total", "Outbox rows published")
        self.failed = counter(
            "ipaas_gateway_outbox_failed_total",
            "Outbox rows set aside (reason: rejected, invalid, failing)",
            ["reason"],
        )
        self.stopped = counter(
            "ipaas_gateway_outbox_pass_failures_total",
            "Relay passes stopped early (bus away, stream full, a failing row) and retried",
        )
        self.set_aside = Gauge(
            "ipaas_gateway_outbox_set_aside",
            "Outbox rows set aside and neither retried nor deleted (all replicas see the same)",
            registry=registry,
        )


class OutboxRelay(Wakeable):
    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: Bus,
        dsn: str,
        *,
        batch: int,
        poll_seconds: float,
        max_backoff_seconds: float,
        publish_timeout: float,
        max_attempts: int,
        registry: CollectorRegistry,
    ) -> None:
        super().__init__()
        self._pool = pool
        self._bus = bus
        self._dsn = dsn
        self._batch = batch
        self._poll = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._publish_timeout = publish_timeout
        self._max_attempts = max_attempts
        self._metrics = OutboxMetrics(registry)
        self._gauge_due = 0.0
        self.published = 0
        self.set_aside = 0

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen())
        backoff = 0.1
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    more = await self.relay_once()
                except Exception as exc:
                    self._metrics.stopped.inc()
                    if isinstance(exc, _TRANSIENT):
                        log.warning(
                            "outbox relay pass failed; retrying",
                            extra={"error": type(exc).__name__, "retry_in_s": backoff},
                        )
                    else:
                        log.exception("outbox relay pass crashed; retrying", extra={"retry_in_s": backoff})
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                backoff = 0.1
                await self._refresh_gauge()
                if not more:
                    await self._sleep(self._poll, wakeable=True)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def relay_once(self) -> bool:
        """One pass; True if a full batch was handled (there may be more).

        Raises what stopped the pass early (the bus away, or a row's unexpected
        failure), after committing what was decided until then.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK_KEY):
                return False  # another replica is relaying
            rows = await conn.fetch(PENDING_SQL, self._batch)
            done: list[int] = []
            stopped_by: Exception | None = None
            for row in rows:
                error: Exception | None = None
                try:
                    message = prepare(
                        subject=row["subject"],
                        msg_id=row["msg_id"],
                        payload_text=row["payload"],
                        headers_text=row["headers"],
                        max_payload=self._bus.max_payload,
                    )
                    # A PRODUCER span in the writer's trace (the context stored with the row).
                    await self._bus.publish_continued(
                        message.subject, message.payload, message.headers, timeout=self._publish_timeout
                    )
                except Exception as exc:  # noqa: BLE001 - every failure is decided on below
                    error = exc
                decision = decide(error, attempts=row["attempts"], max_attempts=self._max_attempts)
                if decision.fate is Fate.PUBLISHED:
                    done.append(row["id"])
                    continue
                if decision.fate is Fate.SET_ASIDE:
                    await conn.execute(SET_ASIDE_SQL, row["id"], decision.reason)
                    self._note_set_aside(row, decision)
                    continue
                if decision.fate is Fate.RETRY:
                    await conn.execute(ATTEMPT_SQL, row["id"], decision.reason)
                    log.warning(
                        "outbox row failed; it will be retried",
                        extra={
                            "outbox_id": row["id"],
                            "reason": decision.reason,
                            "attempt": row["attempts"] + 1,
                            "max_attempts": self._max_attempts,
                        },
                    )
                stopped_by = error
                break
            if done:
                await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", done)
        # Committed: rows published (or set aside) so far stay so even when the pass stopped midway.
        self.published += len(done)
        self._metrics.published.inc(len(done))
        if stopped_by is not None:
            raise stopped_by
        return len(rows) == self._batch

    def _note_set_aside(self, row: asyncpg.Record, decision: Decision) -> None:
        self.set_aside += 1
        self._metrics.failed.labels(decision.kind).inc()
        self._gauge_due = 0.0
        log.error(
            "outbox row set aside",
            extra={
                "outbox_id": row["id"],
                "subject": row["subject"],
                "msg_id": row["msg_id"],
                "reason": decision.reason,
                "kind": decision.kind,
                "attempts": row["attempts"] + 1,
            },
        )

    async def _refresh_gauge(self) -> None:
        """Recount set-aside rows at most every 30 s, and at once after this relay set one aside."""
        now = asyncio.get_running_loop().time()
        if now < self._gauge_due:
            return
        self._gauge_due = now + GAUGE_REFRESH_SECONDS
        try:
            self._metrics.set_aside.set(await self._pool.fetchval(SET_ASIDE_COUNT_SQL))
        except _TRANSIENT as exc:
            log.debug("set-aside count failed", extra={"error": type(exc).__name__})

    async def _sleep(self, seconds: float, *, wakeable: bool = False) -> None:
        await wait_at_most(self._wake if wakeable else self._stopping, seconds)

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
                    # A close that times out aborts the connection and raises; the loop goes on.
                    with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                        await conn.close(timeout=2)
            await self._sleep(delay)
            delay = min(delay * 2, 10.0)
