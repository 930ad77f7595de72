"""A fast fake Slack for benchmarks, run as its own process so it does not share the test's CPU.

``python -m tests.bench.sink_server --port P`` answers every POST with ``200 ok``
and counts them; ``GET /count`` returns the count, ``GET /health/ready`` 200.
"""

from __future__ import annotations

from aiohttp import web

from tests.bench.stand_in import arguments, ready, serve

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

    app = web.Application()
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/count", count)
    app.router.add_post("/{tail:.*}", hook)
    return app


def main() -> None:
    serve(build(), arguments().port)


if __name__ == "__main__":
    main()
