"""Issuing and locally verifying EdDSA access tokens."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from libs.common.auth.jwt_verify import TOKEN_TYPE, Claims, TokenError, decode_claims, token_kid
from services.auth.signing_keys import SigningKeyRing


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    kid: str


class TokenService:
    """Signs with the ring's current signer; verifies against every published key.

    The ring is replaced (not mutated) when keys are reloaded, so a request sees
    one consistent set.
    """

    def __init__(
        self, ring: SigningKeyRing, *, issuer: str, audience: str, ttl_seconds: int, leeway_seconds: float = 5.0
    ) -> None:
        self.ring = ring
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self.leeway_seconds = leeway_seconds

    def issue(self, user_id: uuid.UUID, tenant_id: uuid.UUID, *, not_before: int | None = None) -> IssuedToken:
        """A token for the user; ``not_before`` (a "revoke all" in force) raises ``iat`` to at least it.

        A login in the same second as a revoke-all would otherwise get an ``iat`` the revocation
        refuses; raised, ``iat``/``nbf`` are at most a second ahead, well inside verifiers' leeway.
        """
        signer = self.ring.signer
        issued_at = int(time.time())
        if not_before is not None:
            issued_at = max(issued_at, not_before)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "tid": str(tenant_id),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, signer.private, algorithm="EdDSA", headers={"kid": signer.kid, "typ": TOKEN_TYPE})
        return IssuedToken(access_token=token, expires_in=self.ttl_seconds, kid=signer.kid)

    def verify(self, token: str) -> Claims:
        kid = token_kid(token)
        key = self.ring.public_key(kid)
        if key is None:
            raise TokenError("unknown_key", "token signed by an unknown key")
        return decode_claims(token, key, issuer=self.issuer, audience=self.audience, leeway=self.leeway_seconds)
