"""The shared verifier (libs/common/auth) against a served JWKS: the refusal matrix, rotation, load."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from libs.common.auth import JwksVerifier, TokenError
from services.auth.signing_keys import SigningKeyRing, key_from_pem
from tests.helpers.auth_setup import bad_tokens, good_claims, new_signing_pem, sign
from tests.helpers.wait import wait_until


class JwksServer:
    """A JWKS endpoint at ``url`` whose key set and latency the test controls; counts fetches.

    It starts with one key (``pem``, ``kid``); the verifiers it makes are closed at teardown.
    """

    def __init__(self) -> None:
        self.pem, self.kid = new_signing_pem()
        self.pems = [self.pem]
        self.delay = 0.0
        self.fetches = 0
        self.url = ""
        self.verifiers: list[JwksVerifier] = []

    async def handler(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        ring = SigningKeyRing([key_from_pem(p.encode(), "test") for p in self.pems])
        return web.json_response(ring.jwks())

    def verifier(self, **options: Any) -> JwksVerifier:
        """A verifier of this JWKS for issuer ``ipaas`` and audience ``ipaas-api``."""
        verifier = JwksVerifier(self.url, issuer="ipaas", audience="ipaas-api", **options)
        self.verifiers.append(verifier)
        return verifier


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    state = JwksServer()
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", state.handler)
    server = TestServer(app)
    await server.start_server()
    state.url = str(server.make_url("/.well-known/jwks.json"))
    yield state
    for verifier in state.verifiers:
        await verifier.close()
    await server.close()


async def test_valid_token_verifies(jwks: JwksServer) -> None:
    claims = good_claims()
    verified = await jwks.verifier().verify(sign(claims, jwks.pem, jwks.kid))
    assert str(verified.user_id) == claims["sub"] and str(verified.tenant_id) == claims["tid"]


async def test_every_bad_token_is_refused_with_a_clear_code(jwks: JwksServer) -> None:
    verifier = jwks.verifier(leeway=0)
    public = load_pem_private_key(jwks.pem.encode(), None).public_key()
    public_raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    for name, (token, code) in bad_tokens(jwks.pem, jwks.kid, public_raw).items():
        with pytest.raises(TokenError) as info:
            await verifier.verify(token)
        assert info.value.code == code, name


async def test_rotation_old_key_verifies_until_it_leaves_jwks(jwks: JwksServer) -> None:
    new_pem, new_kid = new_signing_pem()
    verifier = jwks.verifier(cache_ttl=0.2, min_refresh_interval=0.1)
    old_token = sign(good_claims(), jwks.pem, jwks.kid)
    await verifier.verify(old_token)
    # Rotation: the new key is published next to the old one before it signs anything;
    # verifiers pick it up when their cached JWKS goes stale (refreshed in the background).
    jwks.pems = [jwks.pem, new_pem]
    new_token = sign(good_claims(), new_pem, new_kid)

    async def verifies(token: str) -> bool:
        try:
            await verifier.verify(token)
        except TokenError:
            return False
        return True

    await wait_until(lambda: verifies(new_token), timeout=5, message="new kid accepted")
    assert await verifies(old_token), "old-key tokens still verify while the old key is published"
    # The old key leaves the JWKS: once the cache refreshes, its tokens are refused.
    jwks.pems = [new_pem]

    async def old_refused() -> bool:
        try:
            await verifier.verify(old_token)
        except TokenError as exc:
            return exc.code == "unknown_key"
        return False

    await wait_until(old_refused, timeout=5, message="old key refused after leaving the JWKS")
    assert await verifies(new_token)


async def test_refresh_under_load_never_blocks_on_a_slow_jwks(jwks: JwksServer) -> None:
    verifier = jwks.verifier(cache_ttl=0.05, fetch_timeout=2.0)
    token = sign(good_claims(), jwks.pem, jwks.kid)
    await verifier.verify(token)  # warm the cache
    jwks.delay = 3.0  # every refresh from now on is slow
    await asyncio.sleep(0.1)  # the cache is now stale: the next verify starts a refresh
    started = time.monotonic()
    results = await asyncio.gather(*(verifier.verify(token) for _ in range(500)))
    elapsed = time.monotonic() - started
    assert len(results) == 500
    # Served from the cached key while the slow (3 s) refresh runs in the background; waiting on it
    # would take at least 3 s, so 2 s leaves room for a busy machine without hiding a block.
    assert elapsed < 2.0, f"verifies waited on the JWKS fetch ({elapsed:.2f}s)"
    assert jwks.fetches <= 3, "concurrent verifies must share one refresh"
