"""Credentials through the gateway: another tenant's credential is 404 exactly like a missing one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.helpers.services import ServiceProcess
from tests.helpers.stack_processes import Api, start_auth_and_gateway


async def test_credentials_of_another_tenant_are_invisible(
    service: Callable[..., ServiceProcess], database_url: str, nats_url: str, tmp_path: Path
):
    _, gateway = start_auth_and_gateway(service, database_url, nats_url, tmp_path)
    async with aiohttp.ClientSession() as http:
        a, b = Api(http, gateway.url), Api(http, gateway.url)
        await a.sign_up()
        await b.sign_up()
        secret = {"name": "b's", "type": "openweather", "secret": {"api_key": "b-key-123"}}
        theirs = (await b.data("POST", "/api/credentials", secret, expect=201))["id"]

        assert theirs not in json.dumps(await a.call("GET", "/api/credentials", expect=200))
        body = await a.call("DELETE", f"/api/credentials/{theirs}", expect=404)
        missing_body = await a.call("DELETE", f"/api/credentials/{uuid.uuid4()}", expect=404)
        assert body == missing_body
        assert theirs in json.dumps(await b.call("GET", "/api/credentials", expect=200))  # still there for its owner
