"""Query, path and body values: an invalid one is a 422 naming it, never read as absent or coerced."""

from __future__ import annotations

import uuid

from tests.helpers.gateway_app import SCHEDULE_WORKFLOW, Gateway, tenant

REFUSED = [
    ("/api/workflows?limit=", "limit"),
    ("/api/workflows?limit=0", "limit"),
    ("/api/workflows?limit=201", "limit"),
    ("/api/workflows?limit=abc", "limit"),
    ("/api/workflows?limit=1.0", "limit"),
    ("/api/workflows?limit=%2B1", "limit"),
    ("/api/workflows?limit=%201", "limit"),
    ("/api/workflows?limit=1&limit=2", "limit"),
    ("/api/workflows?cursor=", "cursor"),
    ("/api/workflows?cursor=bm90IGEgY3Vyc29y", "cursor"),
    ("/api/executions?workflow_id=", "workflow_id"),
    ("/api/executions?workflow_id=42", "workflow_id"),
    ("/api/executions?status=", "status"),
    ("/api/executions?status=SUCCEEDED", "status"),
    ("/api/dlq?workflow_id=", "workflow_id"),
    ("/api/dlq?include_replayed=", "include_replayed"),
    ("/api/dlq?include_replayed=yes", "include_replayed"),
    ("/api/dlq?include_replayed=1", "include_replayed"),
]

ACCEPTED = [
    "/api/workflows?limit=200",
    "/api/workflows?unknown=ignored",
    f"/api/executions?workflow_id={uuid.uuid4()}&status=dead&limit=1",
    "/api/dlq?include_replayed=true",
    "/api/dlq?include_replayed=false",
    f"/api/dlq?cursor=1733212345123456.{uuid.uuid4()}",
]


async def test_invalid_query_values_are_422_naming_the_parameter(gw: Gateway, database_url: str) -> None:
    auth = gw.auth(await tenant(database_url))
    for path, field in REFUSED:
        resp = await gw.client.get(path, headers=auth)
        body = await resp.json()
        assert resp.status == 422, (path, body)
        assert body["error"]["code"] == "validation_error"
        assert [d["field"] for d in body["error"]["details"]] == [field], (path, body)
    for path in ACCEPTED:
        resp = await gw.client.get(path, headers=auth)
        assert resp.status == 200, (path, await resp.text())
        assert (await resp.json())["meta"] == {"next_cursor": None}


async def test_routes_match_only_what_the_document_lists(gw: Gateway, database_url: str) -> None:
    auth = gw.auth(await tenant(database_url))
    # {id} matches UUIDs only: "dry-run" is never an id, so its other methods are 405 with the truth in Allow.
    put = await gw.client.put("/api/workflows/dry-run", headers=auth, json={})
    assert put.status == 405 and put.headers["Allow"] == "POST"
    assert (await put.json())["error"]["code"] == "method_not_allowed"
    missing = await gw.client.get("/api/workflows/not-a-uuid", headers=auth)
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    # Only auth's own routes are forwarded, each with its method.
    login = await gw.client.get("/api/auth/login")
    assert login.status == 405 and login.headers["Allow"] == "POST"
    unknown = await gw.client.get("/api/auth/whoami", headers=auth)
    assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "not_found"


async def test_body_booleans_and_integers_are_json_strict(gw: Gateway, database_url: str) -> None:
    auth = gw.auth(await tenant(database_url))
    refused = [
        ({**SCHEDULE_WORKFLOW, "is_active": "true"}, "is_active"),
        ({**SCHEDULE_WORKFLOW, "is_active": 1}, "is_active"),
        ({**SCHEDULE_WORKFLOW, "trigger": {"type": "schedule", "interval_seconds": "60"}}, "trigger.schedule"),
    ]
    for body, field in refused:
        resp = await gw.client.post("/api/workflows", json=body, headers=auth)
        details = (await resp.json())["error"]["details"]
        assert resp.status == 422 and any(d["field"].startswith(field) for d in details), (body, details)
    created = await gw.client.post("/api/workflows", json=SCHEDULE_WORKFLOW, headers=auth)
    workflow_id = (await created.json())["data"]["id"]
    assert (
        await gw.client.patch(f"/api/workflows/{workflow_id}", json={"is_active": "false"}, headers=auth)
    ).status == 422
    assert (
        await gw.client.post(f"/api/workflows/{workflow_id}/rollback", json={"version": "1"}, headers=auth)
    ).status == 422
    # 1.0 is an integer to JSON Schema, so to the API too.
    rolled = await gw.client.post(f"/api/workflows/{workflow_id}/rollback", json={"version": 1.0}, headers=auth)
    assert rolled.status == 200 and (await rolled.json())["data"]["version"] == 2
