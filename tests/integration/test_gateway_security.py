"""Tenant isolation (BOLA), mass assignment and tokens (issue 4, acceptance 5)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
import jwt
import pytest

from tests.helpers.auth_setup import good_claims
from tests.helpers.factories import insert_dead_letter, insert_execution
from tests.helpers.gateway_app import WEBHOOK_WORKFLOW, Gateway, tenant
from tests.helpers.tokens import TokenIssuer


def id_routes(wf: str, execution: str, event: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"/api/workflows/{wf}", None),
        ("PUT", f"/api/workflows/{wf}", WEBHOOK_WORKFLOW),
        ("PATCH", f"/api/workflows/{wf}", {"is_active": False}),
        ("DELETE", f"/api/workflows/{wf}", None),
        ("GET", f"/api/workflows/{wf}/versions", None),
        ("POST", f"/api/workflows/{wf}/rollback", {"version": 1}),
        ("POST", f"/api/workflows/{wf}/webhook-secret", None),
        ("POST", f"/api/workflows/{wf}/run", {"payload": {}}),
        ("GET", f"/api/executions/{execution}", None),
        ("POST", f"/api/dlq/{event}/replay", None),
    ]


async def test_another_tenants_ids_are_404_exactly_like_missing_ones(
    gw: Gateway, database_url: str, db: asyncpg.Connection
):
    tenant_a, tenant_b = await tenant(database_url), await tenant(database_url)
    created = await gw.client.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=gw.auth(tenant_b))
    wf_b = uuid.UUID((await created.json())["data"]["id"])
    exec_b = await insert_execution(db, tenant_b, wf_b)
    event_b = await insert_dead_letter(db, tenant_b, wf_b)
    auth_a = gw.auth(tenant_a)
    theirs = id_routes(str(wf_b), str(exec_b), str(event_b))
    missing = id_routes(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))
    for (method, path, body), (_, missing_path, _) in zip(theirs, missing, strict=True):
        resp = await gw.client.request(method, path, json=body, headers=auth_a)
        absent = await gw.client.request(method, missing_path, json=body, headers=auth_a)
        assert resp.status == 404, (method, path, resp.status)
        assert await resp.json() == await absent.json(), (method, path)

    for path in ("/api/workflows", f"/api/executions?workflow_id={wf_b}", "/api/dlq"):
        listed = await (await gw.client.get(path, headers=auth_a)).json()
        assert listed["data"] == [], path

    # Nothing of B's changed.
    row = await db.fetchrow("SELECT current_version, is_active, deleted_at FROM workflows WHERE id = $1", wf_b)
    assert (row["current_version"], row["is_active"], row["deleted_at"]) == (1, True, None)
    assert await db.fetchval("SELECT replayed_at FROM dead_letters WHERE event_id = $1", event_b) is None
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE payload->>'change' <> 'created'") == 0
    # B still sees everything.
    own = await gw.client.get(f"/api/executions/{exec_b}", headers=gw.auth(tenant_b))
    assert own.status == 200


@pytest.mark.parametrize(
    "extra",
    [
        {"tenant_id": str(uuid.uuid4())},
        {"version": 7},
        {"id": str(uuid.uuid4())},
        {"current_version": 3},
    ],
)
async def test_mass_assignment_fields_are_refused(gw: Gateway, tenant_id: uuid.UUID, extra: dict[str, Any]):
    auth = gw.auth(tenant_id)
    resp = await gw.client.post("/api/workflows", json={**WEBHOOK_WORKFLOW, **extra}, headers=auth)
    assert resp.status == 422
    assert (await resp.json())["error"]["details"][0]["type"] == "extra_forbidden"
    wid = (await (await gw.client.post("/api/workflows", json=WEBHOOK_WORKFLOW, headers=auth)).json())["data"]["id"]
    for method, path, body in (
        ("PUT", f"/api/workflows/{wid}", {**WEBHOOK_WORKFLOW, **extra}),
        ("PATCH", f"/api/workflows/{wid}", {"is_active": False, **extra}),
        ("POST", f"/api/workflows/{wid}/run", {"payload": {}, **extra}),
    ):
        resp = await gw.client.request(method, path, json=body, headers=auth)
        assert resp.status == 422, (method, extra)
    got = (await (await gw.client.get(f"/api/workflows/{wid}", headers=auth)).json())["data"]
    assert got["version"] == 1 and got["id"] == wid and got["is_active"] is True


async def test_tokens_are_required_and_checked(gw: Gateway, tenant_id: uuid.UUID):
    stranger = TokenIssuer()
    now = int(time.time())
    unsigned = jwt.encode(good_claims(tid=str(tenant_id)), key="", algorithm="none")
    cases = {
        "missing": {},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "garbage": {"Authorization": "Bearer not.a.token"},
        "unknown key": stranger.headers(tenant_id),
        "expired": {"Authorization": f"Bearer {gw.issuer.mint(tenant_id, exp=now - 3600, iat=now - 7200)}"},
        "wrong audience": {"Authorization": f"Bearer {gw.issuer.mint(tenant_id, aud='other')}"},
        "alg none": {"Authorization": f"Bearer {unsigned}"},
        # Signed by the published key, but typed as something other than an access token.
        "typ JWT": {"Authorization": f"Bearer {gw.issuer.mint(tenant_id, typ='JWT')}"},
        "typ id token": {"Authorization": f"Bearer {gw.issuer.mint(tenant_id, typ='id_token+jwt')}"},
    }
    for name, headers in cases.items():
        for path in ("/api/workflows", "/api/executions", "/api/dlq", "/api/credentials"):
            resp = await gw.client.get(path, headers=headers)
            assert resp.status == 401, (name, path)
            body = await resp.json()
            assert body["success"] is False and body["error"]["code"], name
    assert (await gw.client.get("/api/workflows", headers=gw.auth(tenant_id))).status == 200
