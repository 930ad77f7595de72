"""The shared HTTP layer: envelope on every error, health and readiness, metrics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, ConfigDict

from deploy.local.infra import free_port, port_in_use
from libs.common.http.app import base_app
from libs.common.http.envelope import ok, read_model
from libs.common.http.errors import NotFound
from libs.common.http.health import metrics_app
from libs.common.http.keys import READINESS_CHECKS, SHUTTING_DOWN
from libs.common.http.serve import serve
from libs.common.settings import HttpSettings
from tests.helpers.wait import wait_until

DEP_FLAG = web.AppKey("dep_flag", dict[str, bool])
JSON = "application/json"
Client = TestClient[web.Request, web.Application]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    count: int


async def create(request: web.Request) -> web.Response:
    body = await read_model(request, Body)
    return ok(body.model_dump(), status=201)


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("SELECT secret FROM vault -- must never reach a client")


async def missing(request: web.Request) -> web.Response:
    raise NotFound("workflow not found")


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = base_app("test")
    app.router.add_post("/api/things", create)
    app.router.add_get("/api/boom", boom)
    app.router.add_get("/api/missing", missing)
    dependency_ok = {"value": True}

    async def check() -> bool:
        return dependency_ok["value"]

    app[READINESS_CHECKS]["dep"] = check
    app[DEP_FLAG] = dependency_ok
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_success_envelope_and_request_id(client: Client) -> None:
    resp = await client.post("/api/things", json={"name": "a", "count": 1})
    assert resp.status == 201
    assert await resp.json() == {"success": True, "data": {"name": "a", "count": 1}}
    first = resp.headers["X-Request-Id"]
    assert re.fullmatch("[0-9a-f]{32}", first)  # 32 hex characters, like a uuid4 hex
    resp = await client.post("/api/things", json={"name": "a", "count": 1})
    assert re.fullmatch("[0-9a-f]{32}", resp.headers["X-Request-Id"]) and resp.headers["X-Request-Id"] != first
    resp = await client.post("/api/things", json={"name": "a", "count": 1}, headers={"X-Request-Id": "abc-1"})
    assert resp.headers["X-Request-Id"] == "abc-1"


@pytest.mark.parametrize(
    ("body", "media", "status", "code"),
    [
        (b"{not json", JSON, 400, "invalid_json"),
        (b"", JSON, 400, "empty_body"),
        (b"\xff\xfe\x00", JSON, 400, "invalid_encoding"),
        (b'{"name": "a", "count": "many"}', JSON, 422, "validation_error"),
        (b'{"name": "a", "count": 1, "tenant_id": "x"}', JSON, 422, "validation_error"),
        (b'{"name": "a", "count": 1e400}', JSON, 422, "validation_error"),
        (b"[1, 2]", JSON, 422, "validation_error"),
        (b'{"name": "a"}', "text/plain", 415, "unsupported_media_type"),
    ],
)
async def test_bad_input_gets_a_4xx_envelope(client: Client, body: bytes, media: str, status: int, code: str) -> None:
    resp = await client.post("/api/things", data=body, headers={"Content-Type": media})
    assert resp.status == status
    payload = await resp.json()
    assert payload["success"] is False
    assert payload["error"]["code"] == code
    if status == 422:
        assert payload["error"]["details"]
        assert all("field" in d and "message" in d for d in payload["error"]["details"])


async def test_unhandled_error_is_a_500_envelope_without_internals(client: Client) -> None:
    resp = await client.get("/api/boom")
    assert resp.status == 500
    text = await resp.text()
    assert "SELECT" not in text and "Traceback" not in text
    assert (await resp.json())["error"] == {"code": "internal_error", "message": "internal error"}


async def test_http_errors_use_the_envelope(client: Client) -> None:
    resp = await client.get("/api/nope")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await client.delete("/api/things")
    assert resp.status == 405 and (await resp.json())["error"]["code"] == "method_not_allowed"
    resp = await client.get("/api/missing")
    assert resp.status == 404 and (await resp.json())["error"]["message"] == "workflow not found"


async def test_readiness_follows_dependencies_and_shutdown(client: Client) -> None:
    assert (await client.get("/health/live")).status == 200
    assert (await client.get("/health/ready")).status == 200
    client.app[DEP_FLAG]["value"] = False
    resp = await client.get("/health/ready")
    assert resp.status == 503 and (await resp.json())["checks"] == {"dep": False}
    client.app[DEP_FLAG]["value"] = True
    client.app[SHUTTING_DOWN].set()
    assert (await client.get("/health/ready")).status == 503
    assert (await client.get("/health/live")).status == 200


async def test_answers_close_their_connection_once_shutting_down(client: Client) -> None:
    before = await client.get("/api/missing")
    assert before.headers.get("Connection", "").lower() != "close"  # keep-alive until SIGTERM
    client.app[SHUTTING_DOWN].set()
    # Every answer from here on, success or error, tells the client not to send its next request here.
    for resp in (
        await client.post("/api/things", json={"name": "a", "count": 1}),
        await client.get("/api/missing"),
        await client.get("/api/boom"),
    ):
        assert resp.headers["Connection"].lower() == "close", resp.status


async def test_metrics_count_requests_and_only_the_metrics_app_serves_them(client: Client) -> None:
    await client.post("/api/things", json={"name": "a", "count": 1})
    assert (await client.get("/metrics")).status == 404  # not on the service's own port
    async with TestClient(TestServer(metrics_app(client.app))) as metrics:
        text = await (await metrics.get("/metrics")).text()
        assert (await metrics.get("/health/live")).status == 404  # and the metrics port serves nothing else
    assert 'ipaas_http_requests_total{method="POST",route="/api/things",status="201"} 1.0' in text


async def test_serve_puts_metrics_on_their_own_port_and_health_on_the_service_port() -> None:
    app = base_app("test")
    settings = HttpSettings(host="127.0.0.1", port=free_port(), metrics_port=free_port())
    task = asyncio.create_task(serve(app, settings))
    try:
        async with aiohttp.ClientSession() as http:
            main, metrics = f"http://127.0.0.1:{settings.port}", f"http://127.0.0.1:{settings.metrics_port}"
            # serve() opens the service's port first, then the metrics port.
            await wait_until(lambda: port_in_use(settings.metrics_port), timeout=10, message="both ports listening")
            async with http.get(f"{main}/health/live") as r:
                assert r.status == 200
            async with http.get(f"{main}/metrics") as r:
                assert r.status == 404
                assert "ipaas_http_requests_total" not in await r.text()
            async with http.get(f"{metrics}/metrics") as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
                assert 'route="/health/live"' in await r.text()
            async with http.get(f"{metrics}/health/ready") as r:
                assert r.status == 404
    finally:
        app[SHUTTING_DOWN].set()
        await asyncio.wait_for(task, timeout=10)
    # Both listeners are closed once serve() returns.
    for port in (settings.port, settings.metrics_port):
        assert not port_in_use(port, "127.0.0.1")
