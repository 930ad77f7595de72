"""``/api/executions`` and ``/api/dlq``: tenant-scoped reads and DLQ replay.

Query parameters are read with :class:`libs.common.models.queries.ExecutionQuery`
and :class:`~libs.common.models.queries.DeadLetterQuery` (an invalid value is a
422 naming it); each row leaves through its response model, the one the
OpenAPI document states.
"""

from __future__ import annotations

from aiohttp import web

from libs.common.http.envelope import ok
from libs.common.models.api import (
    DeadLetterOut,
    DlqReplayRequest,
    ExecutionDetailOut,
    ExecutionOut,
    PageMeta,
    ReplayAccepted,
    ReplayJobOut,
    ReplayOptions,
)
from libs.common.models.queries import DeadLetterQuery, ExecutionQuery
from services.gateway.keys import POOL, REPLAYS, SETTINGS
from services.gateway.pagination import limit_of, list_query, path_id, uuid_segment
from services.gateway.routes.workflows import json_body, tenant
from services.gateway.store import executions as store
from services.gateway.store import replays


async def list_executions(request: web.Request) -> web.Response:
    query = list_query(request, ExecutionQuery)
    limit = limit_of(query, request.app[SETTINGS])
    rows = await store.list_executions(request.app[POOL], tenant(request), query, limit=limit)
    more, rows = len(rows) > limit, rows[:limit]
    return ok([ExecutionOut.model_validate(store.execution_out(r)) for r in rows], meta=PageMeta.after(rows, more))


async def get_execution(request: web.Request) -> web.Response:
    out = await store.get_execution(request.app[POOL], tenant(request), path_id(request))
    return ok(ExecutionDetailOut.model_validate(out))


async def list_dlq(request: web.Request) -> web.Response:
    query = list_query(request, DeadLetterQuery)
    limit = limit_of(query, request.app[SETTINGS])
    rows = await store.list_dead_letters(
        request.app[POOL],
        tenant(request),
        workflow_id=query.workflow_id,
        include_replayed=query.include_replayed,
        limit=limit,
        before=query.after,
        reason=query.reason,
        since=query.since,
        until=query.until,
    )
    more, rows = len(rows) > limit, rows[:limit]
    meta = PageMeta.after(rows, more, "dead_at", "event_id")
    return ok([DeadLetterOut.model_validate(dict(r)) for r in rows], meta=meta)


async def replay(request: web.Request) -> web.Response:
    from_start = request.can_read_body and (await json_body(request, ReplayOptions)).from_start
    out = await store.replay(request.app[POOL], tenant(request), path_id(request, "event_id"), from_start=from_start)
    return ok(ReplayAccepted.model_validate(out), status=202)


async def replay_many(request: web.Request) -> web.Response:
    body = await json_body(request, DlqReplayRequest)
    job = await replays.create_job(
        request.app[POOL], tenant(request), body, max_events=request.app[SETTINGS].replay_max_events
    )
    if job["state"] == "running":
        request.app[REPLAYS].wake()
    return ok(ReplayJobOut.model_validate(job), status=202)


async def replay_job(request: web.Request) -> web.Response:
    job = await replays.get_job(request.app[POOL], tenant(request), path_id(request, "job_id"))
    return ok(ReplayJobOut.model_validate(job))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/executions", list_executions)
    app.router.add_get(f"/api/executions/{uuid_segment('id')}", get_execution)
    app.router.add_get("/api/dlq", list_dlq)
    app.router.add_post(f"/api/dlq/{uuid_segment('event_id')}/replay", replay)
    app.router.add_post("/api/dlq/replay", replay_many)
    app.router.add_get(f"/api/dlq/replay/{uuid_segment('job_id')}", replay_job)
