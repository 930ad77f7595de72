"""Auth and gateway as processes: a user registers and logs in through the gateway and uses the token there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from tests.helpers.auth_setup import PASSWORD, bearer, good_claims, new_signing_pem, sign
from tests.helpers.services import ServiceProcess
from tests.helpers.stack_processes import start_auth_and_gateway


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
async def test_token_from_auth_opens_the_gateway(
    service: Callable[..., ServiceProcess], database_url: str, nats_url: str, tmp_path: Path
) -> None:
    auth, gateway = start_auth_and_gateway(service, database_url, nats_url, tmp_path)
    gw = gateway.url
    async with aiohttp.ClientSession() as http:
        creds = {"email": "e2e@example.com", "password": PASSWORD}
        async with http.post(f"{gw}/api/auth/register", json=creds) as r:
            assert r.status == 201, await r.text()
        async with http.post(f"{gw}/api/auth/login", json=creds) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["data"]["access_token"]
        async with http.get(f"{gw}/api/workflows", headers=bearer(token)) as r:
            assert r.status == 200, await r.text()
        async with http.get(f"{gw}/api/workflows") as r:
            assert r.status == 401
        # A token signed by a key auth never published is refused by the gateway.
        pem, kid = new_signing_pem()
        async with http.get(f"{gw}/api/workflows", headers=bearer(sign(good_claims(), pem, kid))) as r:
            assert r.status == 401
        # Credentials go through the gateway to auth; the secret does not come back.
        async with http.post(
            f"{gw}/api/credentials",
            headers=bearer(token),
            json={"name": "w", "type": "openweather", "secret": {"api_key": "e2e-secret-1"}},
        ) as r:
            assert r.status == 201, await r.text()
            assert "e2e-secret-1" not in await r.text()
        async with http.get(f"{auth.url}/.well-known/jwks.json") as r:
            jwks = await r.json()
    verified = jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["EdDSA"])
    assert verified.claims["aud"] == "ipaas-api"
