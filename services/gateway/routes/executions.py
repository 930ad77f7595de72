"""``/api/executions`` and ``/api/dlq``: tenant-scoped reads and DLQ replay."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from libs.common.http.envelope import ok
from libs.common.http.errors import ValidationFailed
from libs.common.models.events import ExecutionStatus
from services.gateway.keys import POOL, SETTINGS
from services.gateway.pagination import cursor_param, encode_cursor, page_limit, path_id, uuid_param
from services.gateway.routes.workflows import tenant
from services.gateway.store import executions as store

_STATUSES = frozenset(s.value for s in ExecutionStatus)


def _status(request: web.Request) -> str | None:
    raw = request.query.get("status")
    if not raw:
        return None
    if raw not in _STATUSES:
        raise ValidationFailed("invalid query", details=[
            {"field": "status", "message": f"one of {sorted(_STATUSES)}", "type": "enum"}])
    return raw


async def list_executions(request: web.Request) -> web.Response:
    limit = page_limit(request, request.app[SETTINGS])
    rows = await store.list_executions(
        request.app[POOL], tenant(request), workflow_id=uuid_param(request, "workflow_id"),
        status=_status(request), limit=limit, before=cursor_param(request))
    meta: dict[str, Any] = {"next_cursor": None}
    if len(rows) > limit:
        rows = rows[:limit]
        meta["next_cursor"] = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return ok([store.execution_out(r) for r in rows], meta=meta)


async def get_execution(request: web.Request) -> web.Response:
    return ok(await store.get_execution(request.app[POOL], tenant(request), path_id(request)))


async def list_dlq(request: web.Request) -> web.Response:
    limit = page_limit(request, request.app[SETTINGS])
    include = request.query.get("include_replayed", "false").lower() in ("1", "true", "yes")
    rows = await store.list_dead_letters(
        request.app[POOL], tenant(request), workflow_id=uuid_param(request, "workflow_id"),
        include_replayed=include, limit=limit, before=cursor_param(request))
    meta: dict[str, Any] = {"next_cursor": None}
    if len(rows) > limit:
        rows = rows[:limit]
        meta["next_cursor"] = encode_cursor(rows[-1]["dead_at"], rows[-1]["event_id"])
    return ok([dict(r) for r in rows], meta=meta)


async def replay(request: web.Request) -> web.Response:
    out = await store.replay(request.app[POOL], tenant(request), path_id(request, "event_id"))
    return ok(out, status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/executions", list_executions)
    app.router.add_get("/api/executions/{id}", get_execution)
    app.router.add_get("/api/dlq", list_dlq)
    app.router.add_post("/api/dlq/{event_id}/replay", replay)
