"""The yardstick: a bare aiohttp handler that only awaits a JetStream publish.

``python -m tests.bench.baseline_server --port P --nats URL``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid

import nats
from aiohttp import web


async def build(nats_url: str) -> web.Application:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    with contextlib.suppress(Exception):  # it may exist from an earlier run
        await js.add_stream(name="BASELINE", subjects=["baseline.>"])

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        ack = await js.publish("baseline.in", body, headers={"Nats-Msg-Id": uuid.uuid4().hex})
        return web.json_response({"seq": ack.seq}, status=202)

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_post("/hooks/{workflow_id}", handle)
    app.router.add_get("/health/ready", ready)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--nats", required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    loop = asyncio.new_event_loop()
    app = loop.run_until_complete(build(args.nats))
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
