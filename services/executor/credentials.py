"""Credential resolution from auth over NATS request/reply, with a short in-memory cache.

The request goes through :meth:`libs.common.bus.Bus.request`, so auth's span for it joins the
event's trace (a cached answer makes no request and no span).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from pydantic import ValidationError

from libs.common.bus import Bus, NoResponders, RequestTimeout
from libs.common.models.credentials import RESOLVE_SUBJECT, CredentialReply, CredentialRequest
from services.executor.errors import PermanentError, TransientError

# Auth's answers that retrying cannot change.  Every other code is transient, notably
# ``key_unavailable`` (a key rollout: the auth replica has not loaded the key yet) and
# ``internal_error``, and so is a code this executor does not know.
PERMANENT_CODES = frozenset({"not_found", "decrypt_failed", "bad_request"})

Key = tuple[uuid.UUID, uuid.UUID]


class CredentialResolver:
    def __init__(self, bus: Bus, *, timeout_seconds: float, cache_seconds: float, max_entries: int = 10_000) -> None:
        self._bus = bus
        self._timeout = timeout_seconds
        self._ttl = cache_seconds
        self._max = max_entries
        self._cache: dict[Key, tuple[float, str, dict[str, Any]]] = {}
        self._pending: dict[Key, asyncio.Future[tuple[str, dict[str, Any]]]] = {}

    async def resolve(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, expected_type: str) -> dict[str, Any]:
        """The secret of ``credential_id`` for ``tenant_id``; checks its type matches the action."""
        key = (tenant_id, credential_id)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            ctype, secret = cached[1], cached[2]
        else:
            ctype, secret = await self._single_flight(key)
        if ctype != expected_type:
            raise PermanentError(f"credential {credential_id} is of type {ctype}, the action needs {expected_type}")
        return secret

    async def _single_flight(self, key: Key) -> tuple[str, dict[str, Any]]:
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[tuple[str, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            result = await self._request(*key)
        except BaseException as exc:
            if not fut.done():
                fut.set_exception(exc if isinstance(exc, Exception) else TransientError("cancelled"))
                fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        else:
            fut.set_result(result)
            if self._ttl > 0:
                if len(self._cache) >= self._max:
                    self._cache.clear()
                self._cache[key] = (time.monotonic() + self._ttl, result[0], result[1])
            return result
        finally:
            self._pending.pop(key, None)

    async def _request(self, tenant_id: uuid.UUID, credential_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
        body = CredentialRequest(tenant_id=tenant_id, credential_id=credential_id).model_dump_json().encode()
        try:
            msg = await self._bus.request(RESOLVE_SUBJECT, body, timeout=self._timeout)
        except NoResponders as exc:
            raise TransientError("credential service has no responders") from exc
        except (RequestTimeout, TimeoutError) as exc:
            raise TransientError("credential service did not answer in time") from exc
        except Exception as exc:
            raise TransientError(f"credential request failed: {type(exc).__name__}") from exc
        try:
            reply = CredentialReply.model_validate_json(msg.data)
        except ValidationError as exc:
            raise TransientError("credential service sent a malformed reply") from exc
        if not reply.ok:
            code = reply.error or "internal_error"
            if code in PERMANENT_CODES:
                raise PermanentError(f"credential {credential_id} could not be resolved: {code}")
            raise TransientError(f"credential {credential_id} could not be resolved: {code}")
        if reply.type is None:
            raise TransientError("credential service sent a reply without a type")
        return reply.type, dict(reply.secret or {})
