"""Who is calling auth's tenant routes: a user (an access token) or an API key with the route's scope.

A user's token may do everything in its tenant.  An API key may do what its
scopes allow (:class:`libs.common.auth.api_keys.Scope`); auth looks it up by
its digest on every request, so a revoked key is refused here at once (the
gateway's cache may take up to ``IPAAS_GATEWAY_API_KEY_REFRESH_SECONDS``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from libs.common.auth import api_keys
from libs.common.auth.api_keys import Scope
from libs.common.auth.jwt_verify import bearer_token
from libs.common.http.errors import Forbidden, Unauthorized
from services.auth.authn import INVALID_TOKEN, require_claims
from services.auth.keys import POOL

# last_used_at is written at most this often per key (a busy key is not a write per request).
TOUCH_SQL = """
UPDATE api_keys SET last_used_at = now()
 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""
KEY_SQL = "SELECT id, tenant_id, scopes FROM api_keys WHERE digest = $1 AND revoked_at IS NULL"


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: uuid.UUID
    user_id: uuid.UUID | None  # None: an API key
    key_id: uuid.UUID | None = None


async def key_principal(pool: asyncpg.Pool, key: str, scope: Scope) -> Principal:
    """The tenant of a live key that has ``scope``: 401 if no such key, 403 if it lacks the scope."""
    row = await pool.fetchrow(KEY_SQL, api_keys.digest(key)) if api_keys.well_formed(key) else None
    if row is None:
        raise Unauthorized("unknown or revoked API key", code="invalid_api_key", headers=INVALID_TOKEN)
    if scope.value not in row["scopes"]:
        raise Forbidden(
            f"this API key lacks the {scope.value!r} scope",
            code="insufficient_scope",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope.value}"'},
        )
    await pool.execute(TOUCH_SQL, row["id"])
    return Principal(tenant_id=row["tenant_id"], user_id=None, key_id=row["id"])


async def require_principal(request: web.Request, scope: Scope) -> Principal:
    token = bearer_token(request.headers)
    if api_keys.is_api_key(token):
        return await key_principal(request.app[POOL], token, scope)
    claims = await require_claims(request)
    return Principal(tenant_id=claims.tenant_id, user_id=claims.user_id)
