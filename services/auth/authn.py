"""Bearer-token checks for auth's own protected routes (the same rules as the shared verifier).

Revocation is checked against Postgres on every request, so a logout holds
at once on auth's own routes (see :mod:`services.auth.revocation`).
"""

from __future__ import annotations

from aiohttp import web

from libs.common.auth.jwt_verify import Claims, TokenError, bearer_token
from libs.common.http.errors import Unauthorized
from services.auth.keys import POOL, TOKENS
from services.auth.revocation import is_revoked

MAX_TOKEN_LENGTH = 8192
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


async def require_claims(request: web.Request) -> Claims:
    token = bearer_token(request.headers)
    if not token:
        raise Unauthorized(
            "a bearer token is required", code="missing_token", headers={"WWW-Authenticate": 'Bearer realm="ipaas"'}
        )
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("token is too long", code="invalid_token", headers=INVALID_TOKEN)
    try:
        claims = request.app[TOKENS].verify(token)
    except TokenError as exc:
        raise Unauthorized(exc.message, code=exc.code, headers=INVALID_TOKEN) from exc
    if await is_revoked(request.app[POOL], claims):
        raise Unauthorized("token has been revoked", code="token_revoked", headers=INVALID_TOKEN)
    return claims
