"""``/console``: the HTML shell of each page, and the static assets (CSS, ES modules), read once at start.

The console is a client of the public API like any other: these routes serve
files only, take no token and touch no store.  They are not API operations,
so they are not in ``/openapi.json`` (``CONSOLE_PREFIX`` tells the route
tests so).  The trace link template reaches the pages as a data attribute of
the shell, so no page script needs a private endpoint for it.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

from services.gateway.console.headers import secured
from services.gateway.console.pages import HOME, PAGES
from services.gateway.settings import GatewaySettings

CONSOLE_PREFIX = "/console"
HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
SHELLS = web.AppKey("console_shells", dict[str, bytes])
ASSETS = web.AppKey("console_assets", dict[str, tuple[bytes, str]])
NOT_FOUND = b'<!doctype html><title>Not found</title><p>No such console page. <a href="/console/">Console</a>'


def render_shells(settings: GatewaySettings) -> dict[str, bytes]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    shell = env.get_template("shell.html")
    nav = [page for page in PAGES if page.nav]
    return {
        page.name: shell.render(page=page, nav=nav, trace_url_template=settings.trace_url_template).encode()
        for page in PAGES
    }


def load_assets() -> dict[str, tuple[bytes, str]]:
    """Every file under ``static/`` with a known type, by its path there (``js/api.js``)."""
    assets = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if path.is_file() and content_type is not None:
            assets[path.relative_to(STATIC_DIR).as_posix()] = (path.read_bytes(), content_type)
    return assets


async def home(request: web.Request) -> web.Response:
    return secured(web.Response(status=302, headers={"Location": f"{CONSOLE_PREFIX}/{HOME}"}), cache="no-store")


async def page(request: web.Request) -> web.Response:
    body = request.app[SHELLS].get(request.match_info["page"])
    if body is None:
        return secured(web.Response(body=NOT_FOUND, status=404, content_type="text/html"), cache="no-store")
    return secured(web.Response(body=body, content_type="text/html", charset="utf-8"), cache="no-store")


async def asset(request: web.Request) -> web.Response:
    found = request.app[ASSETS].get(request.match_info["path"])
    if found is None:
        return secured(web.Response(text="not found", status=404), cache="no-store")
    body, content_type = found
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return secured(response, cache="no-cache")


def add_routes(app: web.Application, settings: GatewaySettings) -> None:
    app[SHELLS] = render_shells(settings)
    app[ASSETS] = load_assets()
    app.router.add_get(CONSOLE_PREFIX, home)
    app.router.add_get(f"{CONSOLE_PREFIX}/", home)
    app.router.add_get(CONSOLE_PREFIX + "/static/{path:[A-Za-z0-9_./-]+}", asset)
    app.router.add_get(CONSOLE_PREFIX + "/{page:[a-z]+}", page)
