"""The verifier's view of revocations: merging the feed, expiry, and refusing when it cannot vouch."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from libs.common.auth import Claims, RevocationFeed, RevocationsUnavailable, TokenError
from libs.common.auth.revocations import FEED_PATH, feed_url_for
from tests.helpers.wait import wait_until


def claims(*, jti: str = "j1", user: uuid.UUID | None = None, iat: int = 1000) -> Claims:
    return Claims(
        user_id=user or uuid.uuid4(), tenant_id=uuid.uuid4(), jti=jti, issued_at=iat, expires_at=iat + 900, raw={}
    )


@contextlib.asynccontextmanager
async def running(url: str, **options: Any) -> AsyncIterator[RevocationFeed]:
    """A started feed polling ``url``, closed on leaving."""
    feed = RevocationFeed(url, **options)
    feed.start()
    try:
        yield feed
    finally:
        await feed.close()


def test_tokens_and_users_are_merged_and_dropped_once_expired() -> None:
    feed = RevocationFeed("http://auth/x")
    alice = uuid.uuid4()
    feed.apply({"cursor": 7, "tokens": [["j1", 2000]], "users": [[str(alice), 1500, 2500]]}, now=1000)
    assert feed.revoked(claims(jti="j1")) and not feed.revoked(claims(jti="j2"))
    assert feed.revoked(claims(jti="j2", user=alice, iat=1499))  # issued before the "logout everywhere"
    assert not feed.revoked(claims(jti="j2", user=alice, iat=1500))  # issued at or after it
    # A repeated or older row changes nothing; a later revoke-all moves the line forward.
    feed.apply({"cursor": 5, "tokens": [["j1", 1900]], "users": [[str(alice), 1200, 2400]]}, now=1000)
    assert feed.cursor == 7 and feed.tokens["j1"] == 2000 and feed.users[str(alice)] == (1500, 2500)
    feed.apply({"cursor": 9, "tokens": [], "users": [[str(alice), 1800, 2800]]}, now=1000)
    assert feed.revoked(claims(jti="j2", user=alice, iat=1700)) and feed.cursor == 9
    # Past their "until", entries are forgotten (the tokens they refused have expired anyway).
    feed.apply({"cursor": 9, "tokens": [], "users": []}, now=2900)
    assert feed.tokens == {} and feed.users == {}


def test_the_feed_lives_on_the_jwks_origin() -> None:
    assert feed_url_for("http://auth:8081/.well-known/jwks.json?x=1") == f"http://auth:8081{FEED_PATH}"


async def test_check_refuses_revoked_tokens_and_cannot_vouch_when_stale_or_never_loaded() -> None:
    document: dict[str, Any] = {"cursor": 1, "tokens": [["gone", time.time() + 600]], "users": []}
    answering = {"up": True}

    async def handler(request: web.Request) -> web.Response:
        if not answering["up"]:
            return web.json_response({"error": "down"}, status=503)
        return web.json_response(document)

    app = web.Application()
    app.router.add_get(FEED_PATH, handler)
    async with TestServer(app) as server:
        url = str(server.make_url(FEED_PATH))
        async with running(str(server.make_url("/nowhere")), poll_seconds=0.1) as never:
            with pytest.raises(RevocationsUnavailable):
                await never.check(claims())

        async with running(url, poll_seconds=0.1, max_stale_seconds=0.5) as feed:
            await feed.check(claims(jti="fine"))  # waits for the first poll, then accepts
            with pytest.raises(TokenError) as refused:
                await feed.check(claims(jti="gone"))
            assert refused.value.code == "token_revoked"
            answering["up"] = False
            await wait_until(lambda: not feed.fresh, timeout=5, message="the list going stale")
            with pytest.raises(RevocationsUnavailable):
                await feed.check(claims(jti="fine"))
            answering["up"] = True
            await wait_until(lambda: feed.fresh, timeout=5, message="the list refreshed again")
            await feed.check(claims(jti="fine"))

        async with running(url, poll_seconds=0.1, max_stale_seconds=0) as lenient:
            await lenient.check(claims(jti="fine"))
            answering["up"] = False
            lenient.loaded_at = time.monotonic() - 3600  # an hour without a successful poll
            await lenient.check(claims(jti="fine"))  # max_stale 0: keeps accepting on the last list
