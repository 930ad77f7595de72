"""``/api/workflows``: CRUD with immutable versions, history, rollback, enable/disable, secret rotation.

Every new version passes the quotas of :mod:`services.gateway.quotas` first (a
rollback too: it makes an old definition current again).  Lists are pages bounded
in rows and bytes (:mod:`services.gateway.store.pages`).  Each answer leaves
through its response model (:mod:`libs.common.models.api`), the one the OpenAPI
document states; ``{id}`` routes match UUIDs only.
"""

from __future__ import annotations

import uuid
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from libs.common.http.envelope import ok
from libs.common.models.api import (
    DeletedOut,
    PageMeta,
    RollbackRequest,
    SecretRotatedOut,
    SecretSetRequest,
    VersionPageMeta,
    WorkflowOut,
    WorkflowPatch,
    WorkflowVersionOut,
)
from libs.common.models.queries import PageQuery, VersionPageQuery, encode_version_cursor
from libs.common.models.workflows import STORED, WorkflowCreate
from services.gateway.body import read_body
from services.gateway.keys import CACHE, KEKS, POOL, SETTINGS, TENANT
from services.gateway.pagination import limit_of, list_query, path_id, uuid_segment
from services.gateway.quotas import check_definition, check_schedule
from services.gateway.store import pages
from services.gateway.store import workflows as store

M = TypeVar("M", bound=BaseModel)


def tenant(request: web.Request) -> uuid.UUID:
    """The caller's tenant (a user's token or an API key: see services/gateway/middleware.py)."""
    return request[TENANT]


async def json_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as ``model``, within the gateway's body size and read-time limits."""
    s = request.app[SETTINGS]
    return await read_body(request, model, limit=s.max_body_bytes, timeout=s.body_read_timeout_seconds)


async def create_workflow(request: web.Request) -> web.Response:
    body = await json_body(request, WorkflowCreate)
    s = request.app[SETTINGS]
    check_definition(body, s)
    out = WorkflowOut.model_validate(
        await store.create(
            request.app[POOL],
            tenant(request),
            body,
            max_workflows=s.max_workflows_per_tenant,
            ring=request.app[KEKS].ring,
        )
    )
    request.app[CACHE].invalidate(out.id)
    return ok(out, status=201)


async def list_workflows(request: web.Request) -> web.Response:
    s = request.app[SETTINGS]
    query = list_query(request, PageQuery)
    page = await pages.workflows_page(
        request.app[POOL], tenant(request), limit_of(query, s), query.after, s.page_max_bytes
    )
    rows = [WorkflowOut.model_validate(store.to_out(r), context=STORED) for r in page.rows]
    return ok(rows, meta=PageMeta.after(page.rows, page.more))


async def get_workflow(request: web.Request) -> web.Response:
    row = await store.get(request.app[POOL], tenant(request), path_id(request))
    return ok(WorkflowOut.model_validate(store.to_out(row), context=STORED))


async def replace_workflow(request: web.Request) -> web.Response:
    workflow_id = path_id(request)
    body = await json_body(request, WorkflowCreate)
    check_definition(body, request.app[SETTINGS])
    out = await store.replace(request.app[POOL], tenant(request), workflow_id, body, ring=request.app[KEKS].ring)
    request.app[CACHE].invalidate(workflow_id)
    return ok(WorkflowOut.model_validate(out, context=STORED))


async def patch_workflow(request: web.Request) -> web.Response:
    workflow_id = path_id(request)
    body = await json_body(request, WorkflowPatch)
    out = await store.set_active(request.app[POOL], tenant(request), workflow_id, body.is_active)
    request.app[CACHE].invalidate(workflow_id)
    if not body.is_active:
        await store.wait_for_runs(request.app[POOL], workflow_id, request.app[SETTINGS].disable_wait_seconds)
    return ok(WorkflowOut.model_validate(out, context=STORED))


async def delete_workflow(request: web.Request) -> web.Response:
    workflow_id = path_id(request)
    await store.delete(request.app[POOL], tenant(request), workflow_id)
    request.app[CACHE].invalidate(workflow_id)
    await store.wait_for_runs(request.app[POOL], workflow_id, request.app[SETTINGS].disable_wait_seconds)
    return ok(DeletedOut(id=workflow_id))


async def list_versions(request: web.Request) -> web.Response:
    """Oldest first, ``limit``/``cursor`` paged like every list (the cursor is opaque)."""
    s = request.app[SETTINGS]
    query = list_query(request, VersionPageQuery)
    current, page = await pages.versions_page(
        request.app[POOL], tenant(request), path_id(request), limit_of(query, s), query.after_version, s.page_max_bytes
    )
    # A row holds the version, its definition and created_at (and the page's count, which the model ignores).
    out = [
        WorkflowVersionOut.model_validate({**dict(r), "current": r["version"] == current}, context=STORED)
        for r in page.rows
    ]
    meta = VersionPageMeta()
    if page.more and page.rows:
        meta.next_cursor = encode_version_cursor(page.rows[-1]["version"])
    return ok(out, meta=meta.model_dump())


async def rollback_workflow(request: web.Request) -> web.Response:
    workflow_id = path_id(request)
    body = await json_body(request, RollbackRequest)
    pool, tenant_id = request.app[POOL], tenant(request)
    # Versions are immutable: what is checked here is what the rollback makes current.
    definition = await store.version_definition(pool, tenant_id, workflow_id, body.version)
    check_schedule(definition, request.app[SETTINGS].schedule.min_interval_seconds)
    out = await store.rollback(pool, tenant_id, workflow_id, body.version, ring=request.app[KEKS].ring)
    request.app[CACHE].invalidate(workflow_id)
    return ok(WorkflowOut.model_validate(out, context=STORED))


async def rotate_secret(request: web.Request) -> web.Response:
    workflow_id = path_id(request)
    s = request.app[SETTINGS]
    given = (await json_body(request, SecretSetRequest)).secret if request.body_exists else None
    out = await store.rotate_secret(
        request.app[POOL],
        tenant(request),
        workflow_id,
        s.webhook_secret_overlap_seconds,
        ring=request.app[KEKS].ring,
        given=given,
    )
    request.app[CACHE].invalidate(workflow_id)
    return ok(SecretRotatedOut.model_validate(out))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/workflows", create_workflow)
    r.add_get("/api/workflows", list_workflows)
    one = f"/api/workflows/{uuid_segment('id')}"
    r.add_get(one, get_workflow)
    r.add_put(one, replace_workflow)
    r.add_patch(one, patch_workflow)
    r.add_delete(one, delete_workflow)
    r.add_get(f"{one}/versions", list_versions)
    r.add_post(f"{one}/rollback", rollback_workflow)
    r.add_post(f"{one}/webhook-secret", rotate_secret)
