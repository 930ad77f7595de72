"""API keys at the gateway: the live keys' digests, held in memory and refreshed from Postgres.

Auth creates and revokes keys (``/api/keys``); the gateway reads
``api_keys`` (the digest, tenant, scopes and revocation columns only) every
``IPAAS_GATEWAY_API_KEY_REFRESH_SECONDS``:

- a revoked key is refused at most ``refresh_seconds`` (plus one refresh's
  query time) after the revocation committed;
- a key created since the last refresh is looked up by its digest (one
  indexed query), so a new key works at once; a digest found nowhere is
  remembered until the next refresh (at most ``MAX_UNKNOWN`` of them), so a
  flood of made-up keys costs Postgres one query per key per refresh;
- when refreshes fail for longer than ``IPAAS_GATEWAY_API_KEY_MAX_STALE_SECONDS``,
  requests with an API key get 503 (with ``Retry-After``) rather than be
  accepted on a list that might miss a revocation; tokens are not affected;
- last use is recorded in batches on each refresh, at most once a minute per key.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from libs.common.auth import api_keys
from libs.common.db.errors import STORAGE_ERRORS
from libs.common.tasks import repeat_until

log = logging.getLogger(__name__)

LIVE_SQL = "SELECT id, tenant_id, digest, scopes FROM api_keys WHERE revoked_at IS NULL"
ONE_SQL = "SELECT id, tenant_id, digest, scopes FROM api_keys WHERE digest = $1 AND revoked_at IS NULL"
TOUCH_SQL = """
UPDATE api_keys SET last_used_at = now()
 WHERE id = ANY($1::uuid[]) AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""


MAX_UNKNOWN = 100_000


class ApiKeysUnavailable(Exception):
    """The list of live keys is too old to vouch for a key; retry later."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    id: uuid.UUID
    tenant_id: uuid.UUID
    scopes: frozenset[str]


def _entry(row: asyncpg.Record) -> KeyEntry:
    return KeyEntry(id=row["id"], tenant_id=row["tenant_id"], scopes=frozenset(row["scopes"]))


class ApiKeyCache:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        refresh_seconds: float,
        max_stale_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self.refresh_seconds = refresh_seconds
        self.max_stale_seconds = max_stale_seconds
        self._monotonic = monotonic
        self._keys: dict[bytes, KeyEntry] = {}
        self._used: set[uuid.UUID] = set()
        self.unknown: set[bytes] = set()  # digests of no live key, until the next refresh
        self.loaded_at: float | None = None
        self._stopping = asyncio.Event()

    async def refresh(self) -> None:
        started = self._monotonic()
        used, self._used = self._used, set()
        try:
            if used:
                await self._pool.execute(TOUCH_SQL, list(used))
            rows = await self._pool.fetch(LIVE_SQL)
        except BaseException:
            self._used |= used
            raise
        self._keys = {bytes(r["digest"]): _entry(r) for r in rows}
        self.unknown = set()
        self.loaded_at = started

    async def lookup(self, key: str) -> KeyEntry | None:
        """The live key ``key`` is, or None; raises :class:`ApiKeysUnavailable` when the list is stale."""
        if self.loaded_at is None or self._monotonic() - self.loaded_at > self.max_stale_seconds:
            raise ApiKeysUnavailable("the API key list could not be refreshed")
        if not api_keys.well_formed(key):
            return None
        digest = api_keys.digest(key)
        entry = self._keys.get(digest)
        if entry is None:
            if digest in self.unknown:
                return None
            row = await self._pool.fetchrow(ONE_SQL, digest)  # created since the last refresh?
            if row is None:
                if len(self.unknown) >= MAX_UNKNOWN:
                    self.unknown.clear()
                self.unknown.add(digest)
                return None
            entry = self._keys[digest] = _entry(row)
        self._used.add(entry.id)
        return entry

    async def run(self) -> None:
        failed = "API key refresh failed; keeping the last list"
        await repeat_until(
            self._stopping, self.refresh_seconds, self.refresh, errors=STORAGE_ERRORS, log=log, failed=failed
        )

    def stop(self) -> None:
        self._stopping.set()
