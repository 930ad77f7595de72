"""Auth and gateway as processes: a user registers and logs in through the gateway and uses the token there,
and another tenant's credential is 404 there exactly like a missing one."""

from __future__ import annotations

import json
import uuid

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from tests.e2e.conftest import Platform
from tests.helpers.auth_setup import good_claims, new_signing_pem, sign
from tests.helpers.stack_processes import Api


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
async def test_token_from_auth_opens_the_gateway(platform: Platform) -> None:
    api = await platform(executors=0)
    anonymous, forged = Api(api.http, api.base), Api(api.http, api.base)
    await api.call("GET", "/api/workflows", expect=200)
    await anonymous.call("GET", "/api/workflows", expect=401)
    # A token signed by a key auth never published is refused by the gateway.
    pem, kid = new_signing_pem()
    forged.token = sign(good_claims(), pem, kid)
    await forged.call("GET", "/api/workflows", expect=401)
    # Credentials go through the gateway to auth; the secret does not come back.
    secret = {"name": "w", "type": "openweather", "secret": {"api_key": "e2e-secret-1"}}
    assert "e2e-secret-1" not in json.dumps(await api.call("POST", "/api/credentials", secret, expect=201))
    async with api.http.get(f"{api.auth.url}/.well-known/jwks.json") as r:
        jwks = await r.json()
    verified = jose_jwt.decode(api.token, KeySet.import_key_set(jwks), algorithms=["EdDSA"])
    assert verified.claims["aud"] == "ipaas-api"


async def test_credentials_of_another_tenant_are_invisible(platform: Platform) -> None:
    a = await platform(executors=0)
    b = Api(a.http, a.base)
    await b.sign_up()  # a tenant of its own
    secret = {"name": "b's", "type": "openweather", "secret": {"api_key": "b-key-123"}}
    theirs = (await b.data("POST", "/api/credentials", secret, expect=201))["id"]

    assert theirs not in json.dumps(await a.call("GET", "/api/credentials", expect=200))
    body = await a.call("DELETE", f"/api/credentials/{theirs}", expect=404)
    missing_body = await a.call("DELETE", f"/api/credentials/{uuid.uuid4()}", expect=404)
    assert body == missing_body
    assert theirs in json.dumps(await b.call("GET", "/api/credentials", expect=200))  # still there for its owner
