"""API keys (issue 13, acceptance 3): scopes on every route, revocation within the refresh, hashed at rest.

Auth and the gateway run in-process against real Postgres and NATS, each as
its own Postgres role, with the gateway forwarding to auth as deployed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from libs.common.bus import Bus
from services.gateway.api_keys import ApiKeyCache, ApiKeysUnavailable
from services.gateway.operations import AUTH_OPERATIONS, GATEWAY_OPERATIONS
from tests.helpers.auth_setup import bearer, register_and_login
from tests.helpers.gateway_app import WEBHOOK_WORKFLOW, auth_behind_gateway
from tests.helpers.wait import wait_until

REFRESH = 0.5  # IPAAS_GATEWAY_API_KEY_REFRESH_SECONDS in this test

# What a key needs for each operation that takes a bearer credential (None: no key may call it).
# Written out here, not derived from the gateway's rule, so the rule is checked against it.
EXPECTED_SCOPE: dict[tuple[str, str], str | None] = {
    ("post", "/api/workflows"): "write",
    ("get", "/api/workflows"): "read",
    ("get", "/api/workflows/{id}"): "read",
    ("put", "/api/workflows/{id}"): "write",
    ("patch", "/api/workflows/{id}"): "write",
    ("delete", "/api/workflows/{id}"): "write",
    ("get", "/api/workflows/{id}/versions"): "read",
    ("post", "/api/workflows/{id}/rollback"): "write",
    ("post", "/api/workflows/{id}/webhook-secret"): "write",
    ("post", "/api/workflows/{id}/run"): "write",
    ("post", "/api/workflows/dry-run"): "write",
    ("get", "/api/executions"): "read",
    ("get", "/api/executions/{id}"): "read",
    ("get", "/api/dlq"): "read",
    ("post", "/api/dlq/{event_id}/replay"): "replay",
    ("post", "/api/dlq/replay"): "replay",
    ("get", "/api/dlq/replay/{job_id}"): "read",
    ("post", "/api/auth/logout"): None,
    ("post", "/api/auth/logout-all"): None,
    ("post", "/api/credentials"): "write",
    ("get", "/api/credentials"): "read",
    ("delete", "/api/credentials/{credential_id}"): "write",
    ("post", "/api/keys"): "admin",
    ("get", "/api/keys"): "admin",
    ("delete", "/api/keys/{key_id}"): "admin",
}
SCOPES = ("read", "write", "replay", "admin")


@dataclass
class Stack:
    gateway: TestClient[web.Request, web.Application]
    user: dict[str, str]

    async def new_key(self, *scopes: str, token: str | None = None) -> dict[str, Any]:
        resp = await self.gateway.post(
            "/api/keys",
            json={"name": f"ci {'+'.join(scopes)}", "scopes": list(scopes)},
            headers=bearer(token or self.user["token"]),
        )
        assert resp.status == 201, await resp.text()
        data: dict[str, Any] = (await resp.json())["data"]
        return data


@pytest.fixture
async def stack(database_url: str, nats_url: str, bus: Bus, role_url: Callable[[str], str]) -> AsyncIterator[Stack]:
    async with auth_behind_gateway(
        role_url("gateway"), nats_url, auth_database_url=role_url("auth"), api_key_refresh_seconds=REFRESH
    ) as edge:
        yield Stack(gateway=edge.gateway, user=await register_and_login(edge.gateway))


def _path(template: str) -> str:
    """Ids that exist nowhere: an allowed call is a 404 or a 422, and changes nothing."""
    for name in ("{id}", "{event_id}", "{job_id}", "{credential_id}", "{key_id}"):
        template = template.replace(name, str(uuid.uuid4()))
    return template


async def test_every_route_asks_for_its_scope(stack: Stack):
    token_operations = {(op.method, op.path) for op in GATEWAY_OPERATIONS + AUTH_OPERATIONS if not op.public}
    assert token_operations == set(EXPECTED_SCOPE)  # a new route must say what a key needs for it
    keys = {scope: (await stack.new_key(scope))["key"] for scope in SCOPES}
    for (method, template), needed in EXPECTED_SCOPE.items():
        for scope, key in keys.items():
            resp = await stack.gateway.request(method.upper(), _path(template), json={}, headers=bearer(key))
            body = await resp.json()
            if scope == needed:
                assert resp.status not in (401, 403), (method, template, scope, body)
            else:
                assert resp.status == 403, (method, template, scope, body)
                assert body["error"]["code"] == "insufficient_scope"
    # The changes a read key is refused were not made: nothing was created.
    read = bearer(keys["read"])
    assert (await stack.gateway.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=read)).status == 403
    assert (await (await stack.gateway.get("/api/workflows", headers=read)).json())["data"] == []
    # With its scope, a key does the real thing, in its own tenant.
    created = await stack.gateway.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=bearer(keys["write"]))
    assert created.status == 201
    listed = (await (await stack.gateway.get("/api/workflows", headers=read)).json())["data"]
    assert [w["id"] for w in listed] == [(await created.json())["data"]["id"]]
    stranger = await register_and_login(stack.gateway)
    theirs = (await (await stack.gateway.get("/api/workflows", headers=bearer(stranger["token"]))).json())["data"]
    assert theirs == []
    # An admin key manages keys (through auth, which checks the key again).
    made = await stack.new_key("read", token=keys["admin"])
    assert made["scopes"] == ["read"] and made["key"].startswith("ipk_")
    replay = {"workflow_id": str(uuid.uuid4())}
    refused = await stack.gateway.post("/api/dlq/replay", json=replay, headers=bearer(made["key"]))
    assert refused.status == 403


async def test_a_revoked_key_is_refused_within_the_refresh(stack: Stack):
    key = await stack.new_key("read", "write")
    headers = bearer(key["key"])
    assert (await stack.gateway.get("/api/workflows", headers=headers)).status == 200  # accepted at once
    assert (await stack.gateway.get("/api/credentials", headers=headers)).status == 200  # by auth too
    revoked = await stack.gateway.delete(f"/api/keys/{key['id']}", headers=bearer(stack.user["token"]))
    assert revoked.status == 200 and (await revoked.json())["data"]["revoked_at"] is not None

    async def key_refused() -> bool:
        return (await stack.gateway.get("/api/workflows", headers=headers)).status != 200

    await wait_until(key_refused, timeout=REFRESH + 2.0, interval=0.02, message="the revoked key refused")
    refused = await stack.gateway.get("/api/workflows", headers=headers)
    assert refused.status == 401 and (await refused.json())["error"]["code"] == "invalid_api_key"
    assert (await stack.gateway.get("/api/credentials", headers=headers)).status == 401
    listed = (await (await stack.gateway.get("/api/keys", headers=bearer(stack.user["token"]))).json())["data"]
    entry = next(k for k in listed if k["id"] == key["id"])
    assert entry["revoked_at"] is not None and entry["last_used_at"] is not None and "key" not in entry


async def test_keys_are_hashed_at_rest(stack: Stack, database_url: str, db: asyncpg.Connection):
    key = await stack.new_key("read")
    row = await db.fetchrow("SELECT * FROM api_keys WHERE id = $1", uuid.UUID(key["id"]))
    dump = await db.fetchval("SELECT row_to_json(k)::text FROM api_keys k WHERE id = $1", uuid.UUID(key["id"]))
    assert row is not None and key["key"][12:] not in dump  # nothing but the shown prefix is kept in clear
    assert bytes(row["digest"]) == hashlib.sha256(key["key"].encode()).digest()
    assert row["prefix"] == key["prefix"] == key["key"][:12]
    assert len(key["key"]) == 47  # ipk_ + 32 random bytes in base64url
    listed = await (await stack.gateway.get("/api/keys", headers=bearer(stack.user["token"]))).text()
    assert key["key"] not in listed
    for wrong in (key["key"][:-1] + ("A" if key["key"][-1] != "A" else "B"), "ipk_short", "ipk_" + "x" * 43):
        resp = await stack.gateway.get("/api/workflows", headers=bearer(wrong))
        assert resp.status == 401, wrong


async def test_a_key_list_too_old_refuses_keys(database_url: str, role_url: Callable[[str], str]):
    clock = {"now": 100.0}
    async with asyncpg.create_pool(role_url("gateway"), min_size=1, max_size=2) as pool:
        cache = ApiKeyCache(pool, refresh_seconds=5, max_stale_seconds=60, monotonic=lambda: clock["now"])
        with pytest.raises(ApiKeysUnavailable):
            await cache.lookup("ipk_" + "a" * 43)  # never loaded: nothing vouches for any key
        await cache.refresh()
        assert await cache.lookup("ipk_" + "a" * 43) is None  # loaded: an unknown key is simply unknown
        assert len(cache.unknown) == 1  # and not asked for again until the next refresh
        await cache.refresh()
        assert cache.unknown == set()
        clock["now"] += 61
        with pytest.raises(ApiKeysUnavailable):
            await cache.lookup("ipk_" + "a" * 43)
