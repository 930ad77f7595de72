"""Auth in-process against real Postgres and NATS: registration that tells nothing, a bounded hashing
queue, logout and logout-all, and the revocation feed verifiers poll."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import asyncpg
import jwt
import pytest
from aiohttp.test_utils import TestClient

from tests.helpers.auth_setup import PASSWORD, auth_client, auth_settings, bearer, register_and_login


async def test_registering_a_registered_email_answers_exactly_like_a_new_one(
    auth_app: TestClient[Any, Any], db: asyncpg.Connection
) -> None:
    owner = await register_and_login(auth_app)
    users_before = await db.fetchval("SELECT count(*) FROM users")
    tenants_before = await db.fetchval("SELECT count(*) FROM tenants")
    taken = await auth_app.post(
        "/api/auth/register", json={"email": owner["email"].upper(), "password": "another password 2"}
    )
    fresh = await auth_app.post(
        "/api/auth/register",
        json={"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "password": "another password 2"},
    )
    assert taken.status == fresh.status == 201
    taken_body, fresh_body = await taken.json(), await fresh.json()
    assert set(taken_body) == set(fresh_body) == {"success", "data"}
    assert set(taken_body["data"]) == set(fresh_body["data"]) == {"user_id", "tenant_id"}
    ignored = {"x-request-id", "date"}
    assert {k.lower(): v for k, v in taken.headers.items() if k.lower() not in ignored} == {
        k.lower(): v for k, v in fresh.headers.items() if k.lower() not in ignored
    }
    # The ids answered for the registered email belong to nothing, and the account is untouched.
    assert taken_body["data"]["user_id"] != owner["user_id"]
    assert await db.fetchval("SELECT count(*) FROM users WHERE id = $1", uuid.UUID(taken_body["data"]["user_id"])) == 0
    assert await db.fetchval("SELECT count(*) FROM users") == users_before + 1  # only the fresh one
    assert await db.fetchval("SELECT count(*) FROM tenants") == tenants_before + 1
    old = await auth_app.post("/api/auth/login", json={"email": owner["email"], "password": PASSWORD})
    new = await auth_app.post("/api/auth/login", json={"email": owner["email"], "password": "another password 2"})
    assert old.status == 200 and new.status == 401


@pytest.mark.slow
async def test_a_full_hashing_queue_answers_503_with_retry_after_and_costs_no_budget(
    database_url: str, nats_url: str
) -> None:
    # One hashing thread, room for one hash: a burst of logins overflows it.  Slow hashes keep it full.
    settings = auth_settings(
        database_url,
        nats_url,
        hash_workers=1,
        hash_queue_max=1,
        argon2_time_cost=3,
        argon2_memory_kib=32768,
        login_ip_burst=10,
        login_ip_per_minute=0.001,
        login_email_burst=100,
        register_ip_burst=8,
        register_ip_per_minute=0.001,
    )
    async with auth_client(settings) as client:
        guesser = {"X-Forwarded-For": "198.51.100.40"}
        bad = {"email": "nobody@example.com", "password": "wrong guess 1"}
        burst = await asyncio.gather(*(client.post("/api/auth/login", json=bad, headers=guesser) for _ in range(8)))
        statuses = Counter(r.status for r in burst)
        assert set(statuses) == {401, 503} and statuses[503] >= 1, statuses
        for resp in burst:
            if resp.status == 503:
                assert (await resp.json())["error"]["code"] == "server_busy"
                assert int(resp.headers["Retry-After"]) >= 1
        # Only the attempts that were hashed spent the client's budget of 10.
        left = 10 - statuses[401]
        after = [(await client.post("/api/auth/login", json=bad, headers=guesser)).status for _ in range(left + 1)]
        assert after == [401] * left + [429], (statuses, after)
        # Registrations overflow the queue the same way; a refused one costs no registration budget either.
        fresh = [{"email": f"r{i}@example.com", "password": PASSWORD} for i in range(16)]
        answers = await asyncio.gather(*(client.post("/api/auth/register", json=body) for body in fresh[:8]))
        registered = Counter(r.status for r in answers)
        assert set(registered) == {201, 503}, registered
        left = 8 - registered[201]
        later = [(await client.post("/api/auth/register", json=body)).status for body in fresh[8 : 9 + left]]
        assert later == [201] * left + [429], (registered, later)


async def test_logout_refuses_that_token_at_once_and_only_that_one(
    auth_app: TestClient[Any, Any], nats_url: str
) -> None:
    user = await register_and_login(auth_app)
    second = (
        await (await auth_app.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})).json()
    )["data"]["access_token"]
    assert (await auth_app.get("/api/credentials", headers=bearer(user["token"]))).status == 200
    out = await auth_app.post("/api/auth/logout", headers=bearer(user["token"]))
    assert out.status == 200 and (await out.json())["data"] == {"revoked": "token"}
    for method, path in (("GET", "/api/credentials"), ("POST", "/api/auth/logout")):
        refused = await auth_app.request(method, path, headers=bearer(user["token"]))
        assert refused.status == 401, path
        assert (await refused.json())["error"]["code"] == "token_revoked"
    assert (await auth_app.get("/api/credentials", headers=bearer(second))).status == 200
    assert (await auth_app.post("/api/auth/logout")).status == 401  # a logout needs a token


async def test_logout_all_refuses_every_earlier_token_but_not_the_next_login(
    auth_app: TestClient[Any, Any], db: asyncpg.Connection
) -> None:
    user = await register_and_login(auth_app)
    other = await register_and_login(auth_app)
    login = {"email": user["email"], "password": PASSWORD}
    second = (await (await auth_app.post("/api/auth/login", json=login)).json())["data"]["access_token"]
    out = await auth_app.post("/api/auth/logout-all", headers=bearer(second))
    assert out.status == 200 and (await out.json())["data"] == {"revoked": "all"}
    for token in (user["token"], second):
        refused = await auth_app.get("/api/credentials", headers=bearer(token))
        assert refused.status == 401 and (await refused.json())["error"]["code"] == "token_revoked"
    # A login right after (in the same second, as often as not) gets a token that works.
    fresh = (await (await auth_app.post("/api/auth/login", json=login)).json())["data"]["access_token"]
    assert (await auth_app.get("/api/credentials", headers=bearer(fresh))).status == 200
    not_before = await db.fetchval(
        "SELECT not_before FROM token_revocations WHERE user_id = $1", uuid.UUID(user["user_id"])
    )
    assert jwt.decode(fresh, options={"verify_signature": False})["iat"] >= not_before
    # Another user is not affected.
    assert (await auth_app.get("/api/credentials", headers=bearer(other["token"]))).status == 200


async def test_the_revocation_feed_is_incremental_and_refuses_bad_cursors(
    auth_app: TestClient[Any, Any], nats_url: str
) -> None:
    a = await register_and_login(auth_app)
    b = await register_and_login(auth_app)
    await auth_app.post("/api/auth/logout", headers=bearer(a["token"]))
    first = await (await auth_app.get("/internal/token-revocations", params={"after": "0"})).json()
    jti_a = jwt.decode(a["token"], options={"verify_signature": False})["jti"]
    assert [t[0] for t in first["tokens"]] == [jti_a] and first["users"] == []
    assert first["tokens"][0][1] >= jwt.decode(a["token"], options={"verify_signature": False})["exp"]
    await auth_app.post("/api/auth/logout-all", headers=bearer(b["token"]))
    second = await (await auth_app.get("/internal/token-revocations", params={"after": str(first["cursor"])})).json()
    assert [u[0] for u in second["users"]] == [b["user_id"]]
    assert jti_a not in [t[0] for t in second["tokens"]]  # already delivered
    assert second["cursor"] >= first["cursor"]
    for cursor in ("-1", "abc", "1" * 30):
        bad = await auth_app.get("/internal/token-revocations", params={"after": cursor})
        assert bad.status == 400 and (await bad.json())["error"]["code"] == "invalid_cursor"
