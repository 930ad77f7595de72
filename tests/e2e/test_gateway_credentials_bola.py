"""Credentials through the gateway: another tenant's credential is 404 exactly like a missing one."""

from __future__ import annotations

import json
import uuid

from tests.e2e.conftest import Platform


async def test_credentials_of_another_tenant_are_invisible(platform: Platform):
    a = await platform(executors=0)
    b = await a.user()
    secret = {"name": "b's", "type": "openweather", "secret": {"api_key": "b-key-123"}}
    theirs = (await b.data("POST", "/api/credentials", secret, expect=201))["id"]

    assert theirs not in json.dumps(await a.call("GET", "/api/credentials", expect=200))
    body = await a.call("DELETE", f"/api/credentials/{theirs}", expect=404)
    missing_body = await a.call("DELETE", f"/api/credentials/{uuid.uuid4()}", expect=404)
    assert body == missing_body
    assert theirs in json.dumps(await b.call("GET", "/api/credentials", expect=200))  # still there for its owner
