"""Revoked tokens, as a verifier learns them: polled from auth, held in memory, checked per request.

Auth writes a revocation (a logout: one ``jti``; a "logout everywhere": a
user's ``not_before``) to Postgres before it answers.  A :class:`RevocationFeed`
polls auth's ``/internal/token-revocations`` every ``poll_seconds``, asking
only for what is new since its last answer (a cursor), and keeps each entry
until the tokens it refuses would have expired anyway, so memory holds at
most one token lifetime of logouts.

The delay is bounded, and documented (docs/auth.md):

- while auth answers, a token revoked at T is refused from T + 2 x
  ``poll_seconds`` at the latest (polls start every ``poll_seconds``, so the
  first one to see it starts before T + ``poll_seconds``; a fetch is given at
  most ``poll_seconds``);
- when polls fail, the list is kept, and a warning is logged; once it is
  older than ``max_stale_seconds`` (measured from the start of the last
  successful poll) :meth:`RevocationFeed.check` raises
  :class:`RevocationsUnavailable` (the gateway answers 503 with
  ``Retry-After``) rather than accept a token it cannot check.
  ``max_stale_seconds = 0`` keeps accepting on the last list instead.
- Before the first successful poll, a check waits up to ``poll_seconds`` for
  it, then raises :class:`RevocationsUnavailable`.

:meth:`RevocationFeed.apply` is pure (a document and a clock in, the state
out), so the merging and expiry rules are unit-tested without a server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
from yarl import URL

from libs.common.auth.jwt_verify import Claims, TokenError
from libs.common.tasks import cancel_and_wait, wait_at_most

log = logging.getLogger(__name__)

FEED_PATH = "/internal/token-revocations"
WARN_EVERY_SECONDS = 30.0


class RevocationsUnavailable(Exception):
    """The revocation list is missing or too old to vouch for any token; retry later."""


def feed_url_for(jwks_url: str) -> str:
    """The feed on the JWKS's origin: ``http://auth:8081/.well-known/jwks.json`` -> ``http://auth:8081/internal/...``."""
    return str(URL(jwks_url).with_path(FEED_PATH).with_query(None))


class RevocationFeed:
    def __init__(
        self,
        url: str,
        *,
        poll_seconds: float = 2.0,
        max_stale_seconds: float = 15.0,
    ) -> None:
        self.url = url
        self.poll_seconds = poll_seconds
        self.max_stale_seconds = max_stale_seconds
        self._session: aiohttp.ClientSession | None = None  # opened on first use
        self.cursor = 0
        self.tokens: dict[str, float] = {}  # jti -> until (Unix seconds)
        self.users: dict[str, tuple[int, float]] = {}  # user id -> (not_before, until)
        self.loaded_at: float | None = None  # monotonic start of the last successful poll
        self._loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._warned_at = -WARN_EVERY_SECONDS

    # -- the state -----------------------------------------------------------------------------

    def apply(self, document: dict[str, Any], *, now: float) -> None:
        """Merge one answer of the feed and drop what has expired (``now``: Unix seconds)."""
        for jti, until in document.get("tokens", []):
            self.tokens[str(jti)] = max(float(until), self.tokens.get(str(jti), 0.0))
        for user, not_before, until in document.get("users", []):
            held = self.users.get(str(user))
            if held is None or int(not_before) >= held[0]:
                self.users[str(user)] = (int(not_before), max(float(until), held[1] if held else 0.0))
        self.tokens = {jti: until for jti, until in self.tokens.items() if until > now}
        self.users = {user: entry for user, entry in self.users.items() if entry[1] > now}
        self.cursor = max(self.cursor, int(document.get("cursor", 0)))

    def revoked(self, claims: Claims) -> bool:
        if claims.jti in self.tokens:
            return True
        entry = self.users.get(str(claims.user_id))
        return entry is not None and claims.issued_at < entry[0]

    @property
    def fresh(self) -> bool:
        """Loaded, and not older than ``max_stale_seconds`` (when that is set)."""
        if self.loaded_at is None:
            return False
        return self.max_stale_seconds <= 0 or time.monotonic() - self.loaded_at <= self.max_stale_seconds

    async def check(self, claims: Claims) -> None:
        """Raise ``TokenError("token_revoked")`` for a revoked token, :class:`RevocationsUnavailable` if unsure."""
        if self.loaded_at is None:
            await wait_at_most(self._loaded, self.poll_seconds)
        if not self.fresh:
            raise RevocationsUnavailable("the token revocation list could not be refreshed")
        if self.revoked(claims):
            raise TokenError("token_revoked", "token has been revoked")

    # -- polling -------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """One poll; raises on failure (the caller logs and keeps the list)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.poll_seconds)
        async with self._session.get(self.url, params={"after": str(self.cursor)}, timeout=timeout) as resp:
            resp.raise_for_status()
            document = await resp.json(content_type=None)
        if not isinstance(document, dict):
            raise ValueError("the revocation feed did not answer an object")
        self.apply(document, now=time.time())
        self.loaded_at = started
        self._loaded.set()

    async def _run(self) -> None:
        # Polls start every poll_seconds (start to start) and a fetch gets at most that long, so a
        # revocation committed at T is in a snapshot started before T + poll_seconds, applied by T + 2x.
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self.refresh()
            except (aiohttp.ClientError, TimeoutError, ValueError, TypeError, KeyError) as exc:
                now = time.monotonic()
                if now - self._warned_at >= WARN_EVERY_SECONDS:
                    self._warned_at = now
                    log.warning(
                        "token revocation poll failed; keeping the last list",
                        extra={"url": self.url, "error": type(exc).__name__, "fresh": self.fresh},
                    )
            await wait_at_most(self._stop, max(0.0, self.poll_seconds - (time.monotonic() - started)))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="token-revocations")

    async def close(self) -> None:
        self._stop.set()
        await cancel_and_wait(self._task)
        if self._session is not None:
            await self._session.close()
