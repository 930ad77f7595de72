"""``hook_span``: the webhook route's SERVER span is started when spans are recorded, or when a trusted
inbound ``traceparent`` must continue; otherwise the route runs without one (its PRODUCER span roots the trace)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from libs.common.http.app import base_app
from libs.common.http.middleware import direct
from services.gateway import middleware
from services.gateway.keys import SETTINGS

INBOUND_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INBOUND = {"traceparent": f"00-{INBOUND_TRACE}-00f067aa0ba902b7-01"}

Client = TestClient[web.Request, web.Application]


async def current_trace(request: web.Request) -> web.Response:
    ctx = trace.get_current_span().get_span_context()
    return web.json_response({"trace": format(ctx.trace_id, "032x") if ctx.is_valid else None})


@pytest.fixture
async def make_client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[[bool], Any]]:
    # A real tracer (a started span has valid ids), without touching the process's provider.
    tracer = TracerProvider().get_tracer("test")
    monkeypatch.setattr(middleware, "direct_tracer", lambda name: tracer)
    clients: list[Client] = []

    async def make(trusted: bool) -> Client:
        app = base_app("test")
        app[SETTINGS] = cast(Any, SimpleNamespace(trust_trace_context=trusted))
        app.router.add_post("/hooks/{workflow_id}", direct(middleware.hook_span(current_trace)))
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def _trace_of(client: Client, headers: dict[str, str]) -> str | None:
    resp = await client.post("/hooks/x", headers=headers)
    assert resp.status == 200
    return cast(str | None, (await resp.json())["trace"])


@pytest.mark.parametrize("trusted", [False, True])
async def test_no_span_when_nothing_records_and_only_a_trusted_inbound_trace_continues(
    make_client: Callable[[bool], Any], monkeypatch: pytest.MonkeyPatch, trusted: bool
) -> None:
    monkeypatch.setattr(middleware, "spans_recorded", lambda: False)
    client = await make_client(trusted)
    assert await _trace_of(client, {}) is None
    # An untrusted inbound context is only a link: nothing to continue; a trusted one continues, unrecorded.
    assert await _trace_of(client, INBOUND) == (INBOUND_TRACE if trusted else None)


async def test_the_server_span_is_started_when_spans_are_recorded(
    make_client: Callable[[bool], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(middleware, "spans_recorded", lambda: True)
    client = await make_client(False)
    started = await _trace_of(client, INBOUND)
    assert started is not None and started != INBOUND_TRACE
