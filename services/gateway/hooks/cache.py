"""In-memory look-up of webhook workflows, so a warm request does no query.

``id -> WebhookTarget`` (tenant, HMAC keys, active, version), with a short
TTL as a safety net.  Entries are dropped as soon as the ``workflows.changed``
feed announces a change (see :mod:`services.gateway.hooks.invalidation`),
and the whole cache is cleared when the feed may have gaps (a reconnect).
Unknown ids are cached too, for a shorter time, so a storm against a missing
workflow does not reach Postgres.  Concurrent misses for one id share a
single query (:class:`libs.common.cache.CoalescingCache`).

While Postgres is unreachable (:func:`is_database_unavailable`), an expired
entry is served stale for up to ``stale`` seconds past its TTL, so webhooks
to known workflows keep being accepted through a database restart; the
database is tried again for that id once per TTL, not on every request.  An
invalidation or a clear still drops an entry at once, stale or not, and a
miss with no entry to fall back on raises the error (the middleware answers
503 with ``Retry-After``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from libs.common.cache import CoalescingCache
from libs.common.http.errors import ServiceUnavailable
from libs.common.http.unavailable import is_database_unavailable
from libs.common.keyring import DecryptError, KeyRing, KeyUnavailable
from libs.common.models.workflows import STANDARD_WEBHOOKS, HmacSignature
from services.gateway.hooks import secret_store
from services.gateway.hooks.senders import HmacOptions
from services.gateway.hooks.signature import secret_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    workflow_id: uuid.UUID
    tenant_id: uuid.UUID
    version: int
    key: bytes
    # Earlier secrets inside their rotation overlap: (key, wall-clock unix time until which it is valid).
    previous: tuple[tuple[bytes, float], ...] = ()
    # The trigger's ``verify`` (services.gateway.hooks.senders) and, for hmac-sha256, its options.
    verify: str = STANDARD_WEBHOOKS
    hmac: HmacOptions | None = None

    def keys(self, now: float) -> tuple[bytes, ...]:
        return (self.key, *(key for key, until in self.previous if now <= until))


Loader = Callable[[uuid.UUID], Awaitable[WebhookTarget | None]]

_LOOKUP = """
SELECT w.tenant_id, w.current_version,
       (w.webhook_secret IS NOT NULL OR w.webhook_secret_prev IS NOT NULL) AS plaintext,
       v.definition->'trigger'->>'verify' AS verify, (v.definition->'trigger'->'hmac')::text AS hmac
FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version
WHERE w.id = $1 AND w.deleted_at IS NULL AND w.is_active AND w.trigger_type = 'webhook'
"""


def key_for(verify: str, secret: str) -> bytes:
    """The HMAC key of a secret: a ``whsec_`` secret's base64 bytes for Standard Webhooks, else the
    secret as the sender gave it (its UTF-8 bytes), as GitHub, Stripe, Shopify and Slack use it."""
    return secret_key(secret) if verify == STANDARD_WEBHOOKS else secret.encode()


def _hmac_options(raw: str | None) -> HmacOptions | None:
    if not raw:
        return None
    options = HmacSignature.model_validate_json(raw)
    return HmacOptions(header=options.header, encoding=options.encoding, prefix=options.prefix)


class Keys(Protocol):
    ring: KeyRing  # the current keyring (libs.common.keyring.KeyHolder)


def pool_loader(pool: asyncpg.Pool, keys: Keys) -> Loader:
    async def load(workflow_id: uuid.UUID) -> WebhookTarget | None:
        row = await pool.fetchrow(_LOOKUP, workflow_id)
        if row is None:
            return None
        tenant_id, ring = row["tenant_id"], keys.ring
        try:
            if row["plaintext"]:  # written before secrets were sealed: seal it now
                async with pool.acquire() as conn, conn.transaction():
                    await secret_store.seal_legacy_one(conn, ring, workflow_id)
            secrets = await secret_store.read(pool, ring, tenant_id, workflow_id)
        except KeyUnavailable as exc:
            log.error(
                "webhook secret sealed under a key this gateway does not hold",
                extra={"workflow_id": str(workflow_id), "kek_id": exc.kek_id, "kek_ids": ring.kids},
            )
            raise ServiceUnavailable("the webhook's secret cannot be read here yet; retry later") from exc
        except DecryptError:
            log.error("stored webhook secret does not decrypt", extra={"workflow_id": str(workflow_id)})
            return None
        current = [s for s in secrets if s.valid_until is None]
        if not current:
            return None
        verify = row["verify"] or STANDARD_WEBHOOKS
        try:
            return WebhookTarget(
                workflow_id=workflow_id,
                tenant_id=tenant_id,
                version=row["current_version"],
                key=key_for(verify, current[0].secret),
                previous=tuple(
                    (key_for(verify, s.secret), s.valid_until.timestamp()) for s in secrets if s.valid_until is not None
                ),
                verify=verify,
                hmac=_hmac_options(row["hmac"]) if verify == "hmac-sha256" else None,
            )
        except ValueError:
            log.error("stored webhook secret is malformed", extra={"workflow_id": str(workflow_id)})
            return None

    return load


STALE_LOG_INTERVAL = 10.0


class WorkflowCache(CoalescingCache[uuid.UUID, WebhookTarget | None]):
    """Webhook targets by workflow id; served stale while Postgres is away (:func:`is_database_unavailable`)."""

    _stale_logged_at = -STALE_LOG_INTERVAL

    def stale_when(self, exc: Exception) -> bool:
        return is_database_unavailable(exc)

    def on_stale(self, key: uuid.UUID, exc: Exception) -> None:
        now = self._clock()
        if now - self._stale_logged_at >= STALE_LOG_INTERVAL:
            self._stale_logged_at = now
            log.warning(
                "postgres unavailable; serving stale webhook look-ups",
                extra={"workflow_id": str(key), "error": type(exc).__name__, "stale_served": self.stale_served},
            )
