"""A fast fake Slack for benchmarks, run as its own process so it does not share the test's CPU.

``python -m tests.bench.sink_server --port P`` answers every POST with ``200 ok``
and counts them; ``GET /count`` returns the count, ``GET /health/ready`` 200.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

_OK_HEADERS = {"Content-Type": "text/plain"}


def build() -> web.Application:
    calls = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal calls
        await request.read()
        calls += 1
        return web.Response(body=b"ok", headers=_OK_HEADERS)

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"calls": calls})

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/count", count)
    app.router.add_post("/{tail:.*}", hook)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    loop = asyncio.new_event_loop()
    web.run_app(build(), host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
