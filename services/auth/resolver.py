"""NATS responder on ``svc.auth.credentials.resolve``: decrypts a credential for the executor.

Only the executor's NATS identity may publish there (see libs/common/bus/permissions.py).
A queue group spreads requests over auth replicas; within a replica up to
``concurrency`` requests are answered at once (beyond that they wait in the
subscription's buffer).  Bad requests get a ``bad_request`` reply; nothing a
requester sends can stop the responder.

Decryption failures are told apart (see :mod:`services.auth.vault`): a row
sealed under a KEK id this replica has not loaded answers ``key_unavailable``
(transient: during a key rollout another replica, or this one after its next
key reload, can open it); a failed authentication tag or malformed bytes
answer ``decrypt_failed`` (permanent).
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError

from libs.common.bus import Bus, Message, Subscription
from libs.common.bus.tracing import consumer_span
from libs.common.db.tracing import db_span
from libs.common.models.credentials import RESOLVE_SUBJECT, CredentialReply, CredentialRequest
from libs.common.telemetry import ActiveSpan
from services.auth.keys import KekHolder
from services.auth.vault import DecryptError, KeyUnavailable, Sealed

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4096


class CredentialResolver:
    def __init__(self, bus: Bus, pool: asyncpg.Pool, keks: KekHolder, *, queue: str, concurrency: int = 32) -> None:
        self._bus = bus
        self._pool = pool
        self._keks = keks
        self._queue = queue
        self._sub: Subscription | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._sub = await self._bus.subscribe(RESOLVE_SUBJECT, self._on_message, queue=self._queue)
        log.info("credential resolver listening", extra={"subject": RESOLVE_SUBJECT, "queue": self._queue})

    async def stop(self) -> None:
        """Stop taking requests and finish the ones already received."""
        if self._sub is not None:
            try:
                await self._sub.drain()  # type: ignore[no-untyped-call]
            except Exception:
                log.warning("resolver drain failed", exc_info=True)
            self._sub = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_message(self, msg: Message) -> None:
        if not msg.reply:
            return
        await self._slots.acquire()
        task = asyncio.create_task(self._handle(msg))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _handle(self, msg: Message) -> None:
        # A CONSUMER span, child of the executor's request span; the reply carries it back.
        span = consumer_span(msg, msg.subject, self._queue)
        with ActiveSpan(span):
            try:
                reply = await self._resolve(msg.data)
            except Exception:
                log.exception("credential resolution failed")
                reply = CredentialReply(ok=False, error="internal_error")
            span.set_attribute("ipaas.cred_outcome", reply.error or "ok")
            if reply.error == "internal_error":
                span.set_status(Status(StatusCode.ERROR))
            try:
                await self._bus.respond(msg, reply.model_dump_json(exclude_none=True).encode())
            except Exception:
                log.warning("could not send credential reply", exc_info=True)

    async def _resolve(self, data: bytes) -> CredentialReply:
        if len(data) > MAX_REQUEST_BYTES:
            return CredentialReply(ok=False, error="bad_request")
        try:
            request = CredentialRequest.model_validate_json(data)
        except ValidationError:
            log.warning("bad credential request")
            return CredentialReply(ok=False, error="bad_request")
        ids = {"tenant_id": str(request.tenant_id), "cred_id": str(request.credential_id)}
        span = trace.get_current_span()
        span.set_attribute("ipaas.tenant_id", ids["tenant_id"])
        span.set_attribute("ipaas.cred_id", ids["cred_id"])
        try:
            with ActiveSpan(db_span("SELECT", "credentials", "resolve")):
                row = await self._pool.fetchrow(
                    "SELECT type, kek_id, wrapped_dek, ciphertext FROM credentials WHERE id = $1 AND tenant_id = $2",
                    request.credential_id,
                    request.tenant_id,
                )
        except (asyncpg.PostgresError, OSError, TimeoutError):
            log.exception("credential lookup failed", extra=ids)
            return CredentialReply(ok=False, error="internal_error")
        if row is None:
            return CredentialReply(ok=False, error="not_found")
        try:
            secret = self._keks.ring.decrypt(
                request.tenant_id,
                request.credential_id,
                Sealed(row["kek_id"], bytes(row["wrapped_dek"]), bytes(row["ciphertext"])),
            )
        except KeyUnavailable as exc:
            log.warning(
                "credential sealed under a key this replica does not hold; the requester retries",
                extra={**ids, "kek_id": exc.kek_id, "kek_ids": self._keks.ring.kids},
            )
            return CredentialReply(ok=False, error="key_unavailable")
        except (DecryptError, ValueError):
            log.error("credential does not decrypt", extra={**ids, "kek_id": row["kek_id"]})
            return CredentialReply(ok=False, error="decrypt_failed")
        return CredentialReply(ok=True, type=row["type"], secret=secret)
