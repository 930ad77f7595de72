"""Credential resolution from auth over NATS request/reply, with a short in-memory cache.

The request goes through :meth:`libs.common.bus.Bus.request`, so auth's span for it joins the
event's trace (a cached answer makes no request and no span).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from libs.common.bus import Bus, NoResponders, RequestTimeout
from libs.common.cache import CoalescingCache
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
        # Concurrent resolutions of one credential share one request; answers are kept ``cache_seconds``.
        self._cache = CoalescingCache[Key, tuple[str, dict[str, Any]]](
            lambda key: self._request(*key), ttl=cache_seconds, max_entries=max_entries
        )

    async def resolve(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, expected_type: str) -> dict[str, Any]:
        """The secret of ``credential_id`` for ``tenant_id``; checks its type matches the action."""
        ctype, secret = await self._cache.get((tenant_id, credential_id))
        if ctype != expected_type:
            raise PermanentError(f"credential {credential_id} is of type {ctype}, the action needs {expected_type}")
        return secret

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
