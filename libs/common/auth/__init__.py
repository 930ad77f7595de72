"""Token verification shared by every service that accepts a bearer token."""

from libs.common.auth.jwt_verify import Claims, JwksVerifier, TokenError, decode_claims, token_kid
from libs.common.auth.revocations import RevocationFeed, RevocationsUnavailable

__all__ = [
    "Claims",
    "JwksVerifier",
    "RevocationFeed",
    "RevocationsUnavailable",
    "TokenError",
    "decode_claims",
    "token_kid",
]
