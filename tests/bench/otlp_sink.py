"""A collector stand-in for benchmarks: accepts OTLP/HTTP trace exports and drops them.

``python -m tests.bench.otlp_sink --port P``; ``GET /stats`` tells how many exports and bytes came in.
"""

from __future__ import annotations

from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.bench.stand_in import arguments, ready, serve

_EMPTY = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()


def build() -> web.Application:
    counts = {"exports": 0, "bytes": 0}

    async def traces(request: web.Request) -> web.Response:
        counts["bytes"] += len(await request.read())
        counts["exports"] += 1
        return web.Response(body=_EMPTY, content_type="application/x-protobuf")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(counts)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/stats", stats)
    app.router.add_get("/health/ready", ready)
    return app


def main() -> None:
    serve(build(), arguments().port, uvloop=False)


if __name__ == "__main__":
    main()
