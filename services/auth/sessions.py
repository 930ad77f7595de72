"""``POST /api/auth/logout``, ``POST /api/auth/logout-all`` and the revocation feed verifiers poll.

- logout revokes the token it is called with;
- logout-all revokes every token the caller's user holds (all devices),
  including the one it is called with;
- ``GET /internal/token-revocations?after=<cursor>`` is the feed (plain JSON,
  like the JWKS).  It is for verifiers inside the cluster: the gateway does
  not forward it, and NetworkPolicy lets only the gateway reach auth.

Both logouts answer once the revocation is committed; from then on auth's own
routes refuse the token, and each verifier within its documented delay (see
docs/auth.md, "Logout and revocation").
"""

from __future__ import annotations

import logging

from aiohttp import web

from libs.common.http.envelope import ok
from libs.common.http.errors import BadRequest
from libs.common.models.auth import RevokedOut
from services.auth.authn import require_claims
from services.auth.keys import POOL, SETTINGS
from services.auth.revocation import feed, revoke_all, revoke_token

log = logging.getLogger(__name__)

MAX_CURSOR = 2**63 - 1


async def logout(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    await revoke_token(request.app[POOL], claims, leeway=request.app[SETTINGS].token_leeway_seconds)
    log.info("token revoked", extra={"user_id": str(claims.user_id), "jti": claims.jti})
    return ok(RevokedOut(revoked="token"), headers={"Cache-Control": "no-store"})


async def logout_all(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    settings = request.app[SETTINGS]
    not_before = await revoke_all(
        request.app[POOL], claims.user_id, ttl_seconds=settings.token_ttl_seconds, leeway=settings.token_leeway_seconds
    )
    log.info("all tokens of a user revoked", extra={"user_id": str(claims.user_id), "not_before": not_before})
    return ok(RevokedOut(revoked="all"), headers={"Cache-Control": "no-store"})


async def revocations(request: web.Request) -> web.Response:
    raw = request.query.get("after", "0")
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_CURSOR:
        raise BadRequest("after must be a cursor from an earlier answer", code="invalid_cursor")
    document = await feed(request.app[POOL], int(raw))
    return web.json_response(document, headers={"Cache-Control": "no-store"})
