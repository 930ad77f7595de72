"""A ``direct`` route runs right inside the envelope middleware: the app's other middlewares are skipped,
while its answers (errors included) keep the request id, the envelope and the metrics of every route."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler

from libs.common.http.app import base_app
from libs.common.http.errors import NotFound
from libs.common.http.keys import METRICS
from libs.common.http.middleware import direct

SEEN = web.AppKey("seen", list[str])
Client = TestClient[web.Request, web.Application]


async def missing(request: web.Request) -> web.Response:
    raise NotFound("workflow not found")


async def accepted(request: web.Request) -> web.Response:
    return web.Response(body=b'{"success":true}', status=202, content_type="application/json")


async def accepted_too(request: web.Request) -> web.Response:  # direct() marks the function itself
    return await accepted(request)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = base_app("test")
    app[SEEN] = []

    @web.middleware
    async def inner(request: web.Request, handler: Handler) -> web.StreamResponse:
        request.app[SEEN].append(request.path)
        return await handler(request)

    app.middlewares.append(inner)
    app.router.add_post("/hooks/missing", direct(missing))
    app.router.add_post("/hooks/ok", direct(accepted))
    app.router.add_post("/other/ok", accepted_too)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_direct_routes_skip_the_inner_middlewares(client: Client) -> None:
    assert (await client.post("/hooks/ok")).status == 202
    assert (await client.post("/other/ok")).status == 202
    assert client.app is not None
    assert client.app[SEEN] == ["/other/ok"]


async def test_direct_errors_keep_the_envelope_request_id_and_metrics(client: Client) -> None:
    resp = await client.post("/hooks/missing", headers={"X-Request-Id": "rid-1"})
    assert resp.status == 404
    assert resp.headers["X-Request-Id"] == "rid-1"
    assert await resp.json() == {"success": False, "error": {"code": "not_found", "message": "workflow not found"}}
    ok = await client.post("/hooks/ok")
    assert len(ok.headers["X-Request-Id"]) == 32
    assert client.app is not None
    rendered = client.app[METRICS].render().decode()
    assert 'ipaas_http_requests_total{method="POST",route="/hooks/missing",status="404"} 1.0' in rendered
    assert 'ipaas_http_requests_total{method="POST",route="/hooks/ok",status="202"} 1.0' in rendered
