"""Bearer-token checks for auth's own protected routes (the same rules as the shared verifier)."""

from __future__ import annotations

from aiohttp import web

from libs.common.auth.jwt_verify import Claims, TokenError
from libs.common.http.errors import Unauthorized
from services.auth.keys import TOKENS

MAX_TOKEN_LENGTH = 8192


def require_claims(request: web.Request) -> Claims:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a bearer token is required", code="missing_token",
                           headers={"WWW-Authenticate": 'Bearer realm="ipaas"'})
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("token is too long", code="invalid_token",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    try:
        return request.app[TOKENS].verify(token)
    except TokenError as exc:
        raise Unauthorized(exc.message, code=exc.code,
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from exc
