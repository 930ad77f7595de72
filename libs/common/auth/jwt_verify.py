"""Verify EdDSA access tokens against a JWKS fetched asynchronously and cached.

- Algorithms are pinned to ``EdDSA``: ``alg=none`` and HMAC tokens signed with
  a public key are refused before any key is looked at.
- The header's ``typ`` must say "access token" (``at+jwt``, RFC 9068; its
  long form ``application/at+jwt`` too, case-insensitive).  A JWT made for
  another purpose (an ID token, a plain ``JWT``), even one signed by a key in
  the JWKS, is refused before its signature is checked.
- ``exp``, ``iss``, ``aud``, ``sub``, ``tid``, ``iat``, ``jti`` are required; ``nbf`` is honoured.
- With a revocation checker (the gateway passes a
  :class:`libs.common.auth.revocations.RevocationFeed`), a revoked token is
  refused with ``token_revoked`` after every other check passed.
- The JWKS is fetched with aiohttp, never with a blocking client, and cached.
  An unknown ``kid`` triggers at most one refresh per ``min_refresh_interval``;
  concurrent requests share that one fetch and nobody waits on a slow fetch
  longer than ``fetch_timeout``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import jwt
from jwt.algorithms import OKPAlgorithm

log = logging.getLogger(__name__)

ALGORITHMS = ["EdDSA"]
# The ``typ`` header auth issues (RFC 9068 access tokens), and the forms a verifier accepts.
TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
ACCEPTED_TYPES = frozenset({TOKEN_TYPE, "application/" + TOKEN_TYPE})
# jti is required: a token without one could not be revoked by itself (logout).
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub", "iat", "jti"]
MAX_JTI_LENGTH = 256


class TokenError(Exception):
    """A token was refused. ``code`` is the envelope's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case); empty without one."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    jti: str
    issued_at: int
    expires_at: int
    raw: dict[str, Any]


class RevocationChecker(Protocol):
    """Refuses revoked tokens (``TokenError("token_revoked")``): see :mod:`libs.common.auth.revocations`."""

    async def check(self, claims: Claims) -> None: ...


class JwksVerifier:
    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        cache_ttl: float = 300.0,
        min_refresh_interval: float = 10.0,
        fetch_timeout: float = 2.0,
        leeway: float = 5.0,
        revocations: RevocationChecker | None = None,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self._session: aiohttp.ClientSession | None = None  # opened on first use
        self._cache_ttl = cache_ttl
        self._min_refresh = min_refresh_interval
        self._fetch_timeout = fetch_timeout
        self._leeway = leeway
        self._revocations = revocations
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._last_attempt = -1e9
        self._inflight: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def verify(self, token: str) -> Claims:
        kid = token_kid(token)
        key = await self._key_for(kid)
        if key is None:
            raise TokenError("unknown_key", "token signed by an unknown key")
        claims = decode_claims(token, key, issuer=self.issuer, audience=self.audience, leeway=self._leeway)
        if self._revocations is not None:
            await self._revocations.check(claims)
        return claims

    async def _key_for(self, kid: str) -> Any:
        now = time.monotonic()
        stale = now - self._fetched_at > self._cache_ttl
        if kid in self._keys and not stale:
            return self._keys[kid]
        if stale and self._keys:
            # Serve from cache while a background refresh runs.
            self._start_refresh()
            if kid in self._keys:
                return self._keys[kid]
        if now - self._last_attempt >= self._min_refresh or not self._keys:
            self._start_refresh()
        if self._inflight is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._inflight), timeout=self._fetch_timeout)
            except (TimeoutError, aiohttp.ClientError, ValueError):
                log.warning("jwks refresh did not complete", extra={"jwks_url": self.jwks_url})
        return self._keys.get(kid)

    def _start_refresh(self) -> None:
        if self._inflight is not None and not self._inflight.done():
            return
        if time.monotonic() - self._last_attempt < self._min_refresh and self._keys:
            return
        self._last_attempt = time.monotonic()
        self._inflight = asyncio.create_task(self._refresh())

    async def _refresh(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.get(
                self.jwks_url, timeout=aiohttp.ClientTimeout(total=self._fetch_timeout * 5)
            ) as resp:
                resp.raise_for_status()
                document = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            log.warning("jwks fetch failed", extra={"jwks_url": self.jwks_url}, exc_info=True)
            return
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []):
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not jwk.get("kid"):
                continue
            try:
                keys[jwk["kid"]] = OKPAlgorithm.from_jwk(json.dumps(jwk))
            except (jwt.PyJWTError, ValueError, TypeError):
                log.warning("skipping malformed jwk", extra={"kid": jwk.get("kid")})
        self._keys = keys
        self._fetched_at = time.monotonic()
        log.info("jwks refreshed", extra={"kids": sorted(keys)})


def token_kid(token: str) -> str:
    """The ``kid`` of a token whose header pins ``EdDSA`` and types it ``at+jwt``; refuses anything else."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("invalid_token", "malformed token") from exc
    if header.get("alg") not in ALGORITHMS:
        raise TokenError("invalid_token", "token algorithm not allowed")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPES:
        raise TokenError("invalid_token", "token type is not an access token (typ at+jwt)")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError("invalid_token", "token has no key id")
    return kid


def decode_claims(token: str, key: Any, *, issuer: str, audience: str, leeway: float = 5.0) -> Claims:
    """Check the signature with ``key`` (an Ed25519 public key) and the claims; map failures to codes.

    Shared by :class:`JwksVerifier` and by services that hold the keys themselves.
    """
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=ALGORITHMS,
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": REQUIRED_CLAIMS, "verify_nbf": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token_expired", "token has expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise TokenError("token_not_yet_valid", "token is not valid yet") from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenError("invalid_audience", "token audience is not accepted") from exc
    except jwt.InvalidIssuerError as exc:
        raise TokenError("invalid_issuer", "token issuer is not accepted") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError("missing_claim", f"token lacks the {exc.claim!r} claim") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("invalid_token", "token signature or claims are invalid") from exc
    jti = payload["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise TokenError("invalid_token", "token id (jti) is invalid")
    try:
        return Claims(
            user_id=uuid.UUID(str(payload["sub"])),
            tenant_id=uuid.UUID(str(payload["tid"])),
            jti=jti,
            issued_at=int(payload["iat"]),
            expires_at=int(payload["exp"]),
            raw=payload,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise TokenError("invalid_token", "token subject or tenant is invalid") from exc
