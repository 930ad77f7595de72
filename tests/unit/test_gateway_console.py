"""The console's routes: every page and asset carries the security headers, the shell holds no inline
script or style, the trace link template reaches the page, and only files under ``static/`` are served."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from services.gateway.console import routes as console
from services.gateway.console.headers import CSP
from services.gateway.console.pages import PAGES
from services.gateway.settings import GatewaySettings

TEMPLATE = "https://jaeger.example/trace/{trace_id}"


@pytest.fixture
async def client():
    app = web.Application()
    console.add_routes(app, GatewaySettings(IPAAS_TRACE_URL_TEMPLATE=TEMPLATE))
    async with TestClient(TestServer(app)) as c:
        yield c


def assert_secured(headers) -> None:
    csp = headers["Content-Security-Policy"]
    assert csp == CSP
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_every_page_is_a_shell_with_the_csp_and_no_inline_code(client):
    for page in PAGES:
        r = await client.get(f"/console/{page.name}")
        assert r.status == 200, page.name
        assert r.content_type == "text/html"
        assert_secured(r.headers)
        html = await r.text()
        assert f'data-page="{page.name}"' in html
        assert f'data-trace-url-template="{TEMPLATE}"' in html
        assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, "an inline script"
        assert "<style" not in html and " style=" not in html, "an inline style"
        # Every asset the shell names is served.
        for ref in re.findall(r'(?:src|href)="(/console/static/[^"]+)"', html):
            assert (await client.get(ref)).status == 200, ref


async def test_the_console_root_goes_to_the_executions_page(client):
    r = await client.get("/console", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/console/executions"
    assert_secured(r.headers)


async def test_assets_have_their_types_and_the_headers(client):
    r = await client.get("/console/static/js/pages/executions.js")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/javascript")
    assert_secured(r.headers)
    assert "/api/executions" in await r.text()
    css = await client.get("/console/static/console.css")
    assert css.headers["Content-Type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/console/static/../routes.py",
        "/console/static/%2e%2e/routes.py",
        "/console/static/js/nothing.js",
        "/console/nothing",
        "/console/static/../templates/shell.html",
    ],
)
async def test_only_known_pages_and_assets_are_served(client, path):
    r = await client.get(path)
    assert r.status == 404
    assert "import " not in await r.text()


def test_every_page_has_its_module():
    assets = console.load_assets()
    assert {f"js/pages/{page.name}.js" for page in PAGES} <= set(assets)


@pytest.mark.parametrize(
    "bad", ["jaeger.example/trace/{trace_id}", "https://jaeger.example/trace/", "javascript:alert(1)//{trace_id}"]
)
def test_a_trace_template_must_be_an_http_url_with_the_trace_id(bad):
    with pytest.raises(ValidationError, match="IPAAS_TRACE_URL_TEMPLATE"):
        GatewaySettings(IPAAS_TRACE_URL_TEMPLATE=bad)
