"""Building blocks for auth tests: keys, settings, an in-process app, users and crafted tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import nats
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.auth.jwt_verify import TOKEN_TYPE
from libs.common.models.credentials import RESOLVE_SUBJECT, CredentialReply
from libs.common.settings import DatabaseSettings, NatsSettings
from services.auth.app import create_app
from services.auth.settings import AuthSettings
from services.auth.signing_keys import pem_of, thumbprint
from services.auth.vault import KekRing, parse_keks

# Cheap argon2 parameters: the tests check behaviour, not cost.
PASSWORD = "correct horse battery"
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}


def new_signing_pem() -> tuple[str, str]:
    """A fresh Ed25519 key as (PEM text, kid)."""
    key = Ed25519PrivateKey.generate()
    return pem_of(key).decode(), thumbprint(key.public_key())


def new_kek(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def kek_ring(kid: str = "k1") -> KekRing:
    """A keyring of one fresh KEK (what the gateway seals webhook secrets with in-process)."""
    return KekRing(parse_keks(new_kek(kid)))


def kek_env() -> dict[str, str]:
    """The keyring variable a gateway process needs (it seals webhook secrets with the vault's KEKs)."""
    return {"IPAAS_AUTH_KEKS": new_kek("gw1")}


def fast_hash_env() -> dict[str, str]:
    return {f"IPAAS_AUTH_{k.upper()}": str(v) for k, v in FAST_HASH.items()}


def auth_settings(database_url: str, nats_url: str, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "signing_key": new_signing_pem()[0],
        "keks": new_kek("k1"),
        "keys_reload_seconds": 0,
        **FAST_HASH,
        **overrides,
    }
    settings = AuthSettings(**values)
    settings.db = DatabaseSettings(DATABASE_URL=database_url, pool_max=4)
    settings.nats = NatsSettings(NATS_URL=nats_url)
    return settings


@asynccontextmanager
async def auth_client(settings: AuthSettings) -> AsyncIterator[TestClient[Any, Any]]:
    app = await create_app(settings)
    async with TestClient(TestServer(app)) as client:
        yield client


async def register_and_login(
    client: TestClient[Any, Any], email: str | None = None, password: str = PASSWORD
) -> dict[str, str]:
    """Returns ``{"email", "user_id", "tenant_id", "token"}``."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    resp = await client.post("/api/auth/register", json={"email": email, "password": password})
    assert resp.status == 201, await resp.text()
    ids = (await resp.json())["data"]
    resp = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    token = (await resp.json())["data"]["access_token"]
    return {"email": email, "user_id": ids["user_id"], "tenant_id": ids["tenant_id"], "token": token}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def good_claims(*, issuer: str = "ipaas", audience: str = "ipaas-api", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": str(uuid.uuid4()),
        "tid": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        **changes,
    }
    return {key: value for key, value in claims.items() if value is not None}


def sign(claims: dict[str, Any], pem: str | Ed25519PrivateKey, kid: str, *, typ: str | None = TOKEN_TYPE) -> str:
    return jwt.encode(claims, pem, algorithm="EdDSA", headers={"kid": kid, "typ": typ})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bad_tokens(pem: str, kid: str, public_raw: bytes) -> dict[str, tuple[str, str]]:
    """name -> (token, the error code a verifier must answer), one per refusal case."""
    now = int(time.time())
    good = sign(good_claims(), pem, kid)
    header_b64, payload_b64, sig_b64 = good.split(".")
    tampered_claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    tampered_claims["tid"] = str(uuid.uuid4())
    tampered = f"{header_b64}.{_b64(json.dumps(tampered_claims).encode())}.{sig_b64}"

    none_header = _b64(json.dumps({"alg": "none", "kid": kid, "typ": "JWT"}).encode())
    alg_none = f"{none_header}.{payload_b64}."

    hs_header = _b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
    signing_input = f"{hs_header}.{payload_b64}".encode()
    hs_sig = _b64(hmac.new(public_raw, signing_input, hashlib.sha256).digest())
    hs256 = f"{hs_header}.{payload_b64}.{hs_sig}"

    other_pem, _ = new_signing_pem()
    return {
        "alg_none": (alg_none, "invalid_token"),
        "hs256_with_public_key": (hs256, "invalid_token"),
        "unknown_kid": (sign(good_claims(), other_pem, "no-such-kid"), "unknown_key"),
        "expired": (sign(good_claims(iat=now - 3600, nbf=now - 3600, exp=now - 600), pem, kid), "token_expired"),
        "nbf_future": (sign(good_claims(nbf=now + 600), pem, kid), "token_not_yet_valid"),
        "wrong_aud": (sign(good_claims(audience="someone-else"), pem, kid), "invalid_audience"),
        "wrong_iss": (sign(good_claims(issuer="evil"), pem, kid), "invalid_issuer"),
        "missing_exp": (sign(good_claims(exp=None), pem, kid), "missing_claim"),
        "tampered_payload": (tampered, "invalid_token"),
        # Signed by the published key, but not typed as an access token.
        "typ_jwt": (sign(good_claims(), pem, kid, typ="JWT"), "invalid_token"),
        "typ_id_token": (sign(good_claims(), pem, kid, typ="id_token+jwt"), "invalid_token"),
        "no_typ": (sign(good_claims(), pem, kid, typ=None), "invalid_token"),
    }


async def add_credential(
    client: TestClient[Any, Any], user: dict[str, str], name: str, kind: str, secret: dict[str, Any]
) -> ClientResponse:
    """``POST /api/credentials`` of a ``kind`` credential as ``user`` (from :func:`register_and_login`)."""
    body = {"name": name, "type": kind, "secret": secret}
    return await client.post("/api/credentials", headers=bearer(user["token"]), json=body)


async def resolve_credential(
    nats_url: str, tenant_id: str, credential_id: str, raw: bytes | None = None, *, timeout: float = 5.0
) -> CredentialReply:
    """Ask for a credential on NATS as the executor does (``raw`` sent instead of the request when given)."""
    data = raw if raw is not None else json.dumps({"tenant_id": tenant_id, "credential_id": credential_id}).encode()
    async with await nats.connect(nats_url) as nc:
        msg = await nc.request(RESOLVE_SUBJECT, data, timeout=timeout)
    return CredentialReply.model_validate_json(msg.data)
