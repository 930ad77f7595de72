"""``/dev/echo`` exists in development mode only, and answers with the request it received."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from libs.common.http.app import base_app
from services.gateway.app import create_app
from services.gateway.routes import dev_echo
from services.gateway.settings import GatewaySettings


@pytest.mark.parametrize("dev_mode", [True, False])
def test_the_route_exists_in_development_mode_only(dev_mode: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPAAS_DEV_MODE", "true" if dev_mode else "false")
    paths = {r.resource.canonical for r in create_app(GatewaySettings()).router.routes() if r.resource is not None}
    assert (dev_echo.PATH in paths) is dev_mode


async def test_it_echoes_method_query_headers_and_body_but_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPAAS_DEV_MODE", "true")
    app = base_app("gateway")
    dev_echo.add_routes(app, GatewaySettings())
    async with TestClient(TestServer(app)) as client:
        resp = await client.put(
            "/dev/echo?a=1",
            json={"order": "42"},
            headers={"Idempotency-Key": "k1", "Authorization": "Bearer secret", "Cookie": "s=1"},
        )
        assert resp.status == 200
        data = (await resp.json())["data"]
        assert (data["method"], data["path"], data["query"], data["body"]) == (
            "PUT",
            "/dev/echo",
            {"a": "1"},
            {"order": "42"},
        )
        assert data["headers"]["Idempotency-Key"] == "k1"
        assert not {"Authorization", "Cookie"} & set(data["headers"])
        text = await (await client.post("/dev/echo", data=b"not json \xff")).json()
        assert text["data"]["body"] == "not json \ufffd"
