"""The auth API in-process against real Postgres and NATS: tokens, refusals, bad input, rate limits, registration
that tells nothing, a bounded hashing queue, logout and logout-all, and the revocation feed verifiers poll."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections import Counter
from typing import Any

import asyncpg
import jwt
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from tests.helpers.auth_setup import (
    PASSWORD,
    auth_client,
    auth_settings,
    bad_tokens,
    bearer,
    new_signing_pem,
    register_and_login,
)


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
async def test_register_login_token_checks_out_with_an_independent_library(database_url: str, nats_url: str) -> None:
    async with auth_client(auth_settings(database_url, nats_url, token_ttl_seconds=900)) as client:
        user = await register_and_login(client)
        resp = await client.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
        body = await resp.json()
        assert body["success"] is True
        assert body["data"]["token_type"] == "Bearer" and body["data"]["expires_in"] == 900
        # The protected route accepts it.
        resp = await client.get("/api/credentials", headers=bearer(user["token"]))
        assert resp.status == 200
        assert (await resp.json()) == {"success": True, "data": []}
        # An independent JOSE library, given only the served JWKS, verifies it.
        resp = await client.get("/.well-known/jwks.json")
        assert resp.status == 200
        jwks = await resp.json()
        assert "success" not in jwks and jwks["keys"][0]["kty"] == "OKP"
    token = jose_jwt.decode(user["token"], KeySet.import_key_set(jwks), algorithms=["EdDSA"])
    assert token.header["alg"] == "EdDSA" and token.header["kid"] == jwks["keys"][0]["kid"]
    claims = token.claims
    assert claims["sub"] == user["user_id"] and claims["tid"] == user["tenant_id"]
    assert claims["iss"] == "ipaas" and claims["aud"] == "ipaas-api"
    assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] <= claims["iat"] + 1 and claims["jti"]
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": "ipaas"},
        aud={"essential": True, "value": "ipaas-api"},
        exp={"essential": True},
        sub={"essential": True},
        jti={"essential": True},
    ).validate(claims)


async def test_protected_route_refuses_every_bad_token_with_401_and_a_code(database_url: str, nats_url: str) -> None:
    pem, kid = new_signing_pem()
    public_raw = (
        load_pem_private_key(pem.encode(), None)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    settings = auth_settings(database_url, nats_url, signing_key=pem, token_leeway_seconds=0)
    async with auth_client(settings) as client:
        for name, (token, code) in bad_tokens(pem, kid, public_raw).items():
            resp = await client.get("/api/credentials", headers=bearer(token))
            body = await resp.json()
            assert resp.status == 401, name
            assert body["success"] is False and body["error"]["code"] == code, (name, body)
            assert "WWW-Authenticate" in resp.headers
        for headers in (
            {},
            {"Authorization": "Basic abc"},
            {"Authorization": "Bearer "},
            {"Authorization": "Bearer " + "a" * 8100},
            {"Authorization": "Bearer x.y.z"},
        ):
            resp = await client.get("/api/credentials", headers=headers)
            assert resp.status == 401
            assert (await resp.json())["success"] is False


def kept_headers(resp: ClientResponse) -> dict[str, str]:
    """An answer's headers (names in lower case) but the request id and the date, which differ between any two."""
    return {k.lower(): v for k, v in resp.headers.items() if k.lower() not in ("x-request-id", "date")}


async def test_wrong_password_and_unknown_email_look_identical(auth_app: TestClient[Any, Any], nats_url: str) -> None:
    user = await register_and_login(auth_app)
    wrong = await auth_app.post("/api/auth/login", json={"email": user["email"], "password": "not it at all"})
    nobody = {"email": "nobody-here@example.com", "password": "not it at all"}
    unknown = await auth_app.post("/api/auth/login", json=nobody)
    assert wrong.status == unknown.status == 401
    assert await wrong.read() == await unknown.read()
    assert (await wrong.json())["error"]["code"] == "invalid_credentials"
    assert kept_headers(wrong) == kept_headers(unknown)
    # Emails are case-insensitive.
    resp = await auth_app.post("/api/auth/login", json={"email": user["email"].upper(), "password": PASSWORD})
    assert resp.status == 200


GUESS = "whatever1"


async def login_from(client: TestClient[Any, Any], address: str, email: str, password: str = GUESS) -> int:
    """The status of a login by the client at ``address``, as the trusted proxy forwards it."""
    login = {"email": email, "password": password}
    return (await client.post("/api/auth/login", headers={"X-Forwarded-For": address}, json=login)).status


async def test_login_rate_limits_key_the_email_by_client_and_clients_by_address(
    database_url: str, nats_url: str
) -> None:
    settings = auth_settings(
        database_url, nats_url, login_email_burst=3, login_email_per_minute=1, login_ip_burst=6, login_ip_per_minute=1
    )
    async with auth_client(settings) as client:
        user = await register_and_login(client)
        # Successful logins do not use up the budget.
        for _ in range(4):
            ok = await client.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
            assert ok.status == 200
        attacker = {"X-Forwarded-For": "198.51.100.1"}
        bad = {"email": user["email"], "password": "wrong password"}
        statuses = [(await client.post("/api/auth/login", json=bad, headers=attacker)).status for _ in range(3)]
        assert statuses == [401, 401, 401]
        limited = await client.post("/api/auth/login", json=bad, headers=attacker)
        assert limited.status == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert (await limited.json())["error"]["code"] == "rate_limited"
        # The guesser waits, even with the right password...
        right = {"email": user["email"], "password": PASSWORD}
        assert (await client.post("/api/auth/login", json=right, headers=attacker)).status == 429
        # ...but the owner, from their own address, is not locked out of their email.
        owner = await client.post("/api/auth/login", json=right, headers={"X-Forwarded-For": "192.0.2.77"})
        assert owner.status == 200
        assert await login_from(client, "192.0.2.78", user["email"], "wrong password") == 401
        # Per address: one client spraying many emails is stopped too.
        spray = [await login_from(client, "203.0.113.7", f"u{i}@example.com") for i in range(7)]
        assert spray[:6] == [401] * 6 and spray[6] == 429
        assert await login_from(client, "203.0.113.8", "fresh@example.com") == 401


async def test_ipv6_clients_are_limited_by_their_64(database_url: str, nats_url: str) -> None:
    settings = auth_settings(database_url, nats_url, login_ip_burst=4, login_ip_per_minute=1)
    async with auth_client(settings) as client:
        # Rotating through addresses of one /64 does not buy a fresh budget.
        spray = [await login_from(client, f"2001:db8:1:2::{i:x}", f"v{i}@example.com") for i in range(1, 6)]
        assert spray == [401, 401, 401, 401, 429]
        # An IPv4-mapped form counts as its IPv4 address; another /64 has its own budget.
        for address in ("2001:db8:1:3::1", "::ffff:198.51.100.200"):
            assert await login_from(client, address, "w@example.com") == 401, address


JSON = {"Content-Type": "application/json"}
BAD_BODIES: list[tuple[str, bytes, dict[str, str], int]] = [
    ("malformed json", b'{"email": "a@b.co", ', JSON, 400),
    ("not an object", b"[1, 2]", JSON, 422),
    ("missing password", b'{"email": "a@example.com"}', JSON, 422),
    ("missing email", b'{"password": "long enough 1"}', JSON, 422),
    ("unknown field", b'{"email": "a@example.com", "password": "long enough 1", "is_admin": true}', JSON, 422),
    ("wrong types", b'{"email": 5, "password": ["x"]}', JSON, 422),
    ("bad email", b'{"email": "not-an-email", "password": "long enough 1"}', JSON, 422),
    ("non-utf8", b'{"email": "\xff\xfe@example.com", "password": "x"}', JSON, 400),
    ("empty", b"", JSON, 400),
    ("NUL in email", b'{"email": "\\u0000a@example.com", "password": "long enough 1"}', JSON, 422),
    ("lone surrogate", b'{"email": "a@example.com", "password": "long enough \\ud800"}', JSON, 422),
    ("form", b"email=a", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ("1 MB password", json.dumps({"email": "a@example.com", "password": "p" * 1_000_000}).encode(), JSON, 413),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, JSON, 413),
]


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login"])
async def test_bad_input_gets_a_4xx_envelope_never_a_500(auth_app: TestClient[Any, Any], path: str) -> None:
    for name, raw, headers, status in BAD_BODIES:
        resp = await auth_app.post(path, data=raw, headers=headers)
        body = await resp.json()
        assert resp.status == status, (name, resp.status, body)
        assert body["success"] is False and body["error"]["code"], name
        assert "Traceback" not in json.dumps(body)
    # Password length limits on registration; too long a login password is just a failed login.
    short = await auth_app.post("/api/auth/register", json={"email": "s@example.com", "password": "short"})
    assert short.status == 422 and (await short.json())["error"]["details"][0]["field"] == "password"
    long = await auth_app.post(path, json={"email": "l@example.com", "password": "x" * 2000})
    assert long.status in (401, 422)
    huge = await auth_app.post(path, json={"email": "l@example.com", "password": "x" * 5000})
    assert huge.status == 422


async def test_each_user_gets_a_tenant_and_a_salted_hash(
    auth_app: TestClient[Any, Any], db: asyncpg.Connection
) -> None:
    a = await register_and_login(auth_app)
    b = await register_and_login(auth_app)
    assert a["tenant_id"] != b["tenant_id"]
    # Same password, different salts: different hashes.
    hashes = await db.fetch("SELECT password_hash FROM users")
    assert len({h["password_hash"] for h in hashes}) == 2
    assert uuid.UUID(a["user_id"])


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/auth/login", 401), ("/api/auth/register", 201)],
    ids=["login-unknown-vs-wrong-password", "register-new-vs-registered"],
)
async def test_an_unknown_email_costs_about_as_much_as_a_known_one(
    database_url: str, nats_url: str, path: str, status: int
) -> None:
    """A wrong password costs what an unknown email costs at login, and a registered email what a new one costs."""
    # Real hashing work (argon2id, 16 MiB) so the timing is dominated by the KDF, as in production; no rate limit.
    unlimited = {f"{name}_burst": 100 for name in ("login_email", "login_ip", "register_ip")}
    settings = auth_settings(database_url, nats_url, argon2_time_cost=2, argon2_memory_kib=16384, **unlimited)
    async with auth_client(settings) as client:
        user = await register_and_login(client)
        known: list[float] = []
        unknown: list[float] = []
        for i in range(6):  # interleaved, so machine noise hits both alike
            for email, samples in ((user["email"], known), (f"ghost{i}-{uuid.uuid4().hex[:6]}@example.com", unknown)):
                started = time.perf_counter()
                resp = await client.post(path, json={"email": email, "password": "a new password"})
                samples.append(time.perf_counter() - started)
                assert resp.status == status
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, f"unknown/known {path} time ratio {ratio:.2f}"


async def test_hash_parameters_raised_later_upgrade_the_stored_hash_on_login(
    database_url: str, nats_url: str, db: asyncpg.Connection
) -> None:
    async with auth_client(auth_settings(database_url, nats_url)) as client:
        user = await register_and_login(client)
    before = await db.fetchval("SELECT password_hash FROM users WHERE email = $1", user["email"])
    assert before.startswith("$argon2id$") and "m=1024" in before and PASSWORD not in before
    async with auth_client(auth_settings(database_url, nats_url, argon2_memory_kib=2048)) as client:
        resp = await client.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
        assert resp.status == 200
    after = await db.fetchval("SELECT password_hash FROM users WHERE email = $1", user["email"])
    assert "m=2048" in after


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
    assert kept_headers(taken) == kept_headers(fresh)
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
    login = await auth_app.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    second = (await login.json())["data"]["access_token"]
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
