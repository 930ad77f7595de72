"""HTTP hygiene: OpenAPI, malformed input, forwarding to auth, CORS (issue 4, acceptance 7-8); query, path and
body values: an invalid one is a 422 naming it, never read as absent or coerced."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from openapi_spec_validator import validate

from deploy.local.infra import free_port
from libs.common.bus import Bus
from services.gateway.console.routes import CONSOLE_PREFIX
from tests.helpers.fakes import Answer, FakeSink, Seen
from tests.helpers.gateway_app import SCHEDULE_WORKFLOW, Gateway, running_gateway, tenant


@pytest.mark.slow
async def test_openapi_validates_and_lists_every_route(gw: Gateway):
    resp = await gw.client.get("/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    missing = []
    for route in gw.app.router.routes():
        if route.method in ("HEAD", "OPTIONS") or route.resource is None:
            continue
        path = route.resource.canonical
        if path.startswith(CONSOLE_PREFIX):  # the web console's pages: HTML for people, not the API
            continue
        documented = spec["paths"].get(path, {})
        if not documented or (route.method != "*" and route.method.lower() not in documented):
            missing.append(f"{route.method} {path}")
    assert missing == []
    create = spec["paths"]["/api/workflows"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create["$ref"].endswith("/WorkflowCreate")
    assert spec["components"]["schemas"]["WorkflowCreate"]["additionalProperties"] is False


DEEP = b"[" * 100_000 + b"]" * 100_000
# Sent as application/json, but for the form.
BAD_BODIES: list[tuple[str, bytes]] = [
    ("malformed", b'{"name": '),
    ("empty", b""),
    ("null", b"null"),
    ("array", b"[]"),
    ("string", b'"hello"'),
    (
        "wrong types",
        b'{"name": 5, "trigger": "webhook", "action": [], "is_active": "yes", "version": "x",'
        b' "payload": 1, "workflow": 3}',
    ),
    ("huge int", b'{"version": 99999999999999999999999999999999999, "is_active": 1e999, "name": 1e400}'),
    ("nan", b'{"version": NaN, "is_active": Infinity}'),
    (
        "nul char",
        b'{"name": "a\\u0000b", "version": "\\u0000", "payload": "\\u0000",'
        b' "trigger": {"type": "webhook"}, "action": {"type": "x"}}',
    ),
    ("lone surrogate", b'{"name": "\\ud800", "payload": {"\\udfff": 1}}'),
    ("invalid utf-8", b'{"name": "\xff\xfe"}'),
    ("deep nesting", DEEP),
    ("form", b"name=x"),
]


async def test_malformed_input_never_gives_a_500(gw: Gateway, tenant_id: uuid.UUID):
    auth = gw.auth(tenant_id)
    wid = (await (await gw.client.post("/api/workflows", json=SCHEDULE_WORKFLOW, headers=auth)).json())["data"]["id"]
    wf = f"/api/workflows/{wid}"
    writes = [("POST", "/api/workflows"), ("PUT", wf), ("PATCH", wf), ("POST", f"{wf}/rollback"), ("POST", f"{wf}/run")]
    for method, path in [*writes, ("POST", "/api/workflows/dry-run")]:
        for name, body in BAD_BODIES:
            ctype = "application/x-www-form-urlencoded" if name == "form" else "application/json"
            resp = await gw.client.request(method, path, data=body, headers={**auth, "Content-Type": ctype})
            assert 400 <= resp.status < 500, (method, path, name, resp.status, await resp.text())
            out = await resp.json()
            assert out["success"] is False and out["error"]["code"], (method, path, name)
            assert "Traceback" not in await resp.text()
    # Unicode that Postgres can store is fine end to end.
    named = {**SCHEDULE_WORKFLOW, "name": "r\u00e9sum\u00e9 \U0001f680 \u65e5\u672c"}
    resp = await gw.client.post("/api/workflows", json=named, headers=auth)
    assert resp.status == 201
    assert (await resp.json())["data"]["name"] == named["name"]
    for path in (f"/api/workflows/{'9' * 500}", "/api/workflows/%00", "/api/executions/\u00e9"):
        assert (await gw.client.get(path, headers=auth)).status == 404
    assert (await gw.client.get("/api/nowhere", headers=auth)).status == 404
    wrong_method = await gw.client.request("PATCH", "/api/executions", headers=auth)
    assert wrong_method.status == 405 and (await wrong_method.json())["error"]["code"] == "method_not_allowed"


async def test_bodies_over_the_limit_get_413_before_reading(gw: Gateway, database_url: str):
    auth = gw.auth(await tenant(database_url))
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    resp = await gw.client.post("/api/workflows", data=big, headers={**auth, "Content-Type": "application/json"})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"


def fake_auth(seen: Seen, _n: int) -> Answer:
    """Auth's login (the password is "right"), credentials list (echoing its query) and JWKS."""
    if seen.path == "/api/auth/login":
        if seen.json().get("password") != "right":
            refused = {"code": "invalid_credentials", "message": "bad"}
            return Answer(401, json.dumps({"success": False, "error": refused}))
        token = {"access_token": "t", "token_type": "Bearer", "expires_in": 900}
        return Answer(200, json.dumps({"success": True, "data": token}))
    if seen.path == "/api/credentials":
        body = {"success": True, "data": [], "meta": {"q": urlencode(seen.query)}}
        return Answer(200, json.dumps(body), {"X-Upstream": "auth"})
    if seen.path == "/.well-known/jwks.json":
        return Answer(200, json.dumps({"keys": []}))
    return Answer(404, "Not Found")


async def test_auth_and_credentials_routes_are_forwarded(database_url: str, nats_url: str, bus: Bus, sink: FakeSink):
    sink.behaviour = fake_auth
    async with running_gateway(database_url, nats_url, IPAAS_AUTH_URL=sink.url) as gw:
        ok = await gw.client.post("/api/auth/login", json={"email": "a@b.c", "password": "right"})
        assert ok.status == 200 and (await ok.json())["data"]["token_type"] == "Bearer"
        refused = await gw.client.post("/api/auth/login", json={"email": "a@b.c", "password": "wrong"})
        assert refused.status == 401 and (await refused.json())["error"]["code"] == "invalid_credentials"
        assert sink.paths("/api/auth/login")[0].headers["X-Forwarded-For"] == "127.0.0.1"

        auth = gw.auth(await tenant(database_url))
        creds = await gw.client.get("/api/credentials?type=slack", headers=auth)
        assert creds.status == 200 and creds.headers["X-Upstream"] == "auth"
        assert (await creds.json())["meta"]["q"] == "type=slack"
        assert sink.paths("/api/credentials")[-1].headers["Authorization"] == auth["Authorization"]
        jwks = await gw.client.get("/.well-known/jwks.json")
        assert jwks.status == 200 and await jwks.json() == {"keys": []}


async def test_auth_down_gives_503_envelope(database_url: str, nats_url: str, bus: Bus):
    async with running_gateway(database_url, nats_url, IPAAS_AUTH_URL=f"http://127.0.0.1:{free_port()}") as gw:
        resp = await gw.client.post("/api/auth/login", json={"email": "a@b.c", "password": "x"})
        assert resp.status == 503 and "Retry-After" in resp.headers
        assert (await resp.json())["error"]["code"] == "service_unavailable"


async def test_cors_only_for_configured_origins(gw: Gateway, database_url: str, nats_url: str, tenant_id: uuid.UUID):
    resp = await gw.client.get("/api/workflows", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    async with running_gateway(database_url, nats_url, cors_origins="https://app.example") as gw:
        auth: dict[str, Any] = gw.auth(tenant_id)
        resp = await gw.client.get("/api/workflows", headers={**auth, "Origin": "https://app.example"})
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
        preflight = await gw.client.options(
            "/api/workflows",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Content-Type",
            },
        )
        assert preflight.status == 200
        other = await gw.client.get("/api/workflows", headers={**auth, "Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers


async def test_health_and_metrics(gw: Gateway):
    assert (await gw.client.get("/health/live")).status == 200
    ready = await gw.client.get("/health/ready")
    checks = (await ready.json())["checks"]
    assert ready.status == 200 and checks == {"postgres": True, "nats": True, "nats_streams": True}
    metrics = await (await gw.metrics.get("/metrics")).text()
    assert "ipaas_http_requests_total" in metrics
    # Not on the public port.
    public = await gw.client.get("/metrics")
    assert public.status == 404 and "ipaas_http_requests_total" not in await public.text()


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
