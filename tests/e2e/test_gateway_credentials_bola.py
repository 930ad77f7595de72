"""Credentials through the gateway: another tenant's credential is 404 exactly like a missing one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.helpers.auth_setup import PASSWORD, bearer
from tests.helpers.services import ServiceProcess
from tests.helpers.stack_processes import start_auth_and_gateway


async def _token(http: aiohttp.ClientSession, gw: str, email: str) -> str:
    creds = {"email": email, "password": PASSWORD}
    async with http.post(f"{gw}/api/auth/register", json=creds) as r:
        assert r.status == 201, await r.text()
    async with http.post(f"{gw}/api/auth/login", json=creds) as r:
        assert r.status == 200, await r.text()
        token: str = (await r.json())["data"]["access_token"]
        return token


async def test_credentials_of_another_tenant_are_invisible(
    service: Callable[..., ServiceProcess], database_url: str, nats_url: str, tmp_path: Path
):
    _, gateway = start_auth_and_gateway(service, database_url, nats_url, tmp_path)
    gw = gateway.url
    async with aiohttp.ClientSession() as http:
        token_a = await _token(http, gw, "a@example.com")
        token_b = await _token(http, gw, "b@example.com")
        async with http.post(
            f"{gw}/api/credentials",
            headers=bearer(token_b),
            json={"name": "b's", "type": "openweather", "secret": {"api_key": "b-key-123"}},
        ) as r:
            assert r.status == 201, await r.text()
            theirs = (await r.json())["data"]["id"]

        async with http.get(f"{gw}/api/credentials", headers=bearer(token_a)) as r:
            assert r.status == 200
            assert theirs not in await r.text()
        async with http.delete(f"{gw}/api/credentials/{theirs}", headers=bearer(token_a)) as r:
            status, body = r.status, await r.json()
        async with http.delete(f"{gw}/api/credentials/{uuid.uuid4()}", headers=bearer(token_a)) as r:
            missing_status, missing_body = r.status, await r.json()
        assert status == missing_status == 404
        assert body == missing_body
        async with http.get(f"{gw}/api/credentials", headers=bearer(token_b)) as r:
            assert theirs in await r.text()  # still there for its owner
