"""What the benchmarks' stand-in servers share: their command line, the readiness answer, how each is served."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable

from aiohttp import web


def arguments(*required: str) -> argparse.Namespace:
    """``--port`` (an integer) and each option named in ``required``, all of them required."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    for name in required:
        parser.add_argument(name, required=True)
    return parser.parse_args()


async def ready(request: web.Request) -> web.Response:
    """``GET /health/ready``: what the ``service`` fixture waits for before a bench starts."""
    return web.json_response({"status": "ready"})


def install_uvloop() -> None:
    """Run on uvloop, as the services do, where it is installed; on the standard loop otherwise."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()


def serve(app: web.Application | Awaitable[web.Application], port: int, *, uvloop: bool = True) -> None:
    """Serve ``app`` (or the one the coroutine builds, on the serving loop) on 127.0.0.1:``port`` until killed."""
    if uvloop:
        install_uvloop()
    loop = asyncio.new_event_loop()
    if not isinstance(app, web.Application):
        app = loop.run_until_complete(app)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)
