"""The yardstick: a bare aiohttp handler that only awaits a JetStream publish.

``python -m tests.bench.baseline_server --port P --nats URL``
"""

from __future__ import annotations

import contextlib
import uuid

import nats
from aiohttp import web

from tests.bench.stand_in import arguments, ready, serve


async def build(nats_url: str) -> web.Application:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    with contextlib.suppress(Exception):  # it may exist from an earlier run
        await js.add_stream(name="BASELINE", subjects=["baseline.>"])

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        ack = await js.publish("baseline.in", body, headers={"Nats-Msg-Id": uuid.uuid4().hex})
        return web.json_response({"seq": ack.seq}, status=202)

    app = web.Application()
    app.router.add_post("/hooks/{workflow_id}", handle)
    app.router.add_get("/health/ready", ready)
    return app


def main() -> None:
    args = arguments("--nats")
    serve(build(args.nats), args.port)


if __name__ == "__main__":
    main()
