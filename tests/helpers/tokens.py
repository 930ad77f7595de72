"""Access tokens for tests, without the auth service.

An Ed25519 key, a JWKS and a token-revocation feed served by a local aiohttp
app on 127.0.0.1, and tokens minted with pyjwt carrying the claims of the API
contract.  ``issuer.revoked`` (jti -> until) is what the feed answers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.auth.jwt_verify import TOKEN_TYPE
from libs.common.auth.revocations import FEED_PATH
from services.auth.signing_keys import SigningKey
from tests.helpers.auth_setup import good_claims, sign


class TokenIssuer:
    def __init__(self) -> None:
        self.key = SigningKey(uuid.uuid4().hex, Ed25519PrivateKey.generate(), "test")
        self.revoked: dict[str, int] = {}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk()]}

    def mint(self, tenant_id: uuid.UUID, *, typ: str = TOKEN_TYPE, **claims: Any) -> str:
        """A token of ``tenant_id`` with the contract's claims (a new user, ten minutes), ``claims`` changed."""
        return sign(good_claims(tid=str(tenant_id), **claims), self.key.private, self.key.kid, typ=typ)

    def headers(self, tenant_id: uuid.UUID) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(tenant_id)}"}


@asynccontextmanager
async def serve_jwks(issuer: TokenIssuer, port: int) -> AsyncIterator[str]:
    """Serve ``issuer``'s JWKS at ``http://127.0.0.1:<port>/.well-known/jwks.json`` (yields that URL),
    and its revocation feed on the same origin, where the gateway looks for it by default."""

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response(issuer.jwks())

    async def revocations(_: web.Request) -> web.Response:
        return web.json_response(
            {"cursor": 0, "tokens": [[jti, until] for jti, until in issuer.revoked.items()], "users": []}
        )

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_get(FEED_PATH, revocations)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/.well-known/jwks.json"
    finally:
        await runner.cleanup()
