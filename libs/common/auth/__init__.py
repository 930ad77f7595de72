"""Token verification shared by every service that accepts a bearer token."""

from libs.common.auth.jwt_verify import Claims, JwksVerifier, TokenError, decode_claims, token_kid

__all__ = ["Claims", "JwksVerifier", "TokenError", "decode_claims", "token_kid"]
