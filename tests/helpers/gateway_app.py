"""Run the gateway in-process against the test's NATS and Postgres, with a local JWKS.

Each app builds its OpenAPI document, and the JSON schemas of the API's models are most of that
work (a third of a second).  They depend on the model classes alone, so the harness computes
them once per session: :func:`_schemas_once` memoises pydantic's ``models_json_schema`` for the
gateway's module and hands each app a deep copy (the builder edits what it gets).  The document
itself is still built per app, from that app's settings.
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from pydantic.json_schema import models_json_schema

from deploy.local.infra import free_port
from libs.common.http.health import metrics_app
from libs.common.settings import DatabaseSettings, NatsSettings
from services.auth.app import create_app as create_auth_app
from services.gateway import openapi
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.helpers.auth_setup import auth_settings, kek_env
from tests.helpers.factories import connection, create_tenant
from tests.helpers.tokens import TokenIssuer, serve_jwks


@functools.cache
def _schemas(pairs: tuple[tuple[type[Any], Any], ...], ref_template: str) -> Any:
    return models_json_schema(list(pairs), ref_template=ref_template)


def _schemas_once(pairs: Sequence[tuple[type[Any], Any]], *, ref_template: str) -> Any:
    return copy.deepcopy(_schemas(tuple(pairs), ref_template))


vars(openapi)["models_json_schema"] = _schemas_once  # the name the builder calls


@dataclass
class Gateway:
    client: TestClient[web.Request, web.Application]
    app: web.Application
    issuer: TokenIssuer
    settings: GatewaySettings
    # The metrics listener (``/metrics`` is not on the gateway's own port).
    metrics: TestClient[web.Request, web.Application]

    def auth(self, tenant_id: uuid.UUID) -> dict[str, str]:
        return self.issuer.headers(tenant_id)


def gateway_settings(database_url: str, nats_url: str, jwks_url: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "nats": NatsSettings(NATS_URL=nats_url),
        "db": DatabaseSettings(DATABASE_URL=database_url, pool_max=5),
        "IPAAS_JWKS_URL": jwks_url,
        **kek_env(),
        "outbox_poll_seconds": 0.2,
    }
    values.update(overrides)
    return GatewaySettings(**values)


@asynccontextmanager
async def running_gateway(
    database_url: str, nats_url: str, *, issuer: TokenIssuer | None = None, **overrides: Any
) -> AsyncIterator[Gateway]:
    issuer = issuer or TokenIssuer()
    async with serve_jwks(issuer, free_port()) as jwks_url:
        settings = gateway_settings(database_url, nats_url, jwks_url, **overrides)
        app = create_app(settings)
        async with (
            TestClient(TestServer(app, port=free_port())) as client,
            TestClient(TestServer(metrics_app(app))) as metrics,
        ):
            yield Gateway(client=client, app=app, issuer=issuer, settings=settings, metrics=metrics)


async def tenant(database_url: str) -> uuid.UUID:
    async with connection(database_url) as conn:
        return await create_tenant(conn)


WEBHOOK_WORKFLOW: dict[str, Any] = {
    "name": "orders to slack",
    "trigger": {"type": "webhook"},
    "action": {
        "type": "slack_message",
        "credential_id": "7d8b3c52-1f0e-4a55-9d8e-2b9f0f3a1c11",
        "config": {"text": "New order {{ payload.order_id }}"},
    },
}

SCHEDULE_WORKFLOW: dict[str, Any] = {
    "name": "hourly weather",
    "trigger": {"type": "schedule", "cron": "0 * * * *", "timezone": "Europe/Paris"},
    "action": {"type": "http_request", "config": {"method": "POST", "url": "https://example.invalid/x"}},
}


@dataclass
class Edge:
    """Auth behind the gateway, both in-process on real ports."""

    gateway: TestClient[web.Request, web.Application]
    auth: TestClient[web.Request, web.Application]
    auth_server: TestServer


@asynccontextmanager
async def auth_behind_gateway(
    database_url: str,
    nats_url: str,
    *,
    auth: dict[str, Any] | None = None,
    auth_database_url: str | None = None,
    **gateway: Any,
) -> AsyncIterator[Edge]:
    """Auth and the gateway in-process on real ports; the gateway verifies tokens with auth's JWKS and forwards
    to it.  ``auth`` overrides auth's settings and ``gateway`` the gateway's; auth connects to
    ``auth_database_url`` when given, else to ``database_url`` as the gateway does."""
    auth_server = TestServer(
        await create_auth_app(auth_settings(auth_database_url or database_url, nats_url, **(auth or {}))),
        port=free_port(),
    )
    async with TestClient(auth_server) as auth_client:
        auth_url = str(auth_server.make_url("")).rstrip("/")
        settings = gateway_settings(
            database_url, nats_url, f"{auth_url}/.well-known/jwks.json", IPAAS_AUTH_URL=auth_url, **gateway
        )
        async with TestClient(TestServer(create_app(settings), port=free_port())) as gateway_client:
            yield Edge(gateway_client, auth_client, auth_server)


async def post_dry_run(
    gw: Gateway, auth: dict[str, str], workflow: dict[str, Any], payload: Any = None
) -> ClientResponse:
    """``POST /api/workflows/dry-run`` of ``workflow`` with ``payload`` (``{}`` unless given)."""
    body = {"workflow": workflow, "payload": {} if payload is None else payload}
    return await gw.client.post("/api/workflows/dry-run", headers=auth, json=body)


def slack_text(text: str) -> dict[str, Any]:
    """:data:`WEBHOOK_WORKFLOW` posting ``text`` to Slack."""
    return {**WEBHOOK_WORKFLOW, "action": {**WEBHOOK_WORKFLOW["action"], "config": {"text": text}}}


async def all_pages(gw: Gateway, path: str, tenant_id: uuid.UUID, limit: int) -> list[list[Any]]:
    """Every page of the list at ``path`` for ``tenant_id``, ``limit`` at a time, following ``next_cursor``."""
    pages: list[list[Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        resp = await gw.client.get(path, params=params, headers=gw.auth(tenant_id))
        body = await resp.json()
        assert resp.status == 200, body
        pages.append(body["data"])
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "paging does not end"


async def list_executions(gw: Gateway, tenant_id: uuid.UUID, **params: str) -> list[dict[str, Any]]:
    """``GET /api/executions`` for ``tenant_id`` with ``params``: the page's executions."""
    resp = await gw.client.get("/api/executions", params=params, headers=gw.auth(tenant_id))
    assert resp.status == 200, await resp.text()
    data: list[dict[str, Any]] = (await resp.json())["data"]
    return data


async def create_webhook_workflow(gw: Gateway, tenant_id: uuid.UUID, **extra: Any) -> tuple[str, str]:
    """``POST /api/workflows`` of :data:`WEBHOOK_WORKFLOW` (``extra`` added) for ``tenant_id``, which must answer
    201: the new workflow's id and webhook secret."""
    resp = await gw.client.post("/api/workflows", json={**WEBHOOK_WORKFLOW, **extra}, headers=gw.auth(tenant_id))
    assert resp.status == 201, await resp.text()
    data = (await resp.json())["data"]
    return data["id"], data["webhook"]["secret"]
