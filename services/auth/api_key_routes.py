"""``/api/keys``: a tenant's API keys, created (the key shown once), listed and revoked.

A user's token, or an API key with the ``admin`` scope, may manage them.
Only the key's SHA-256 digest is stored (:mod:`libs.common.auth.api_keys`).
The list is oldest first, paged by ``limit`` and ``cursor`` like
``/api/credentials``; revoked keys stay listed, with ``revoked_at``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import web

from libs.common.auth import api_keys
from libs.common.auth.api_keys import Scope
from libs.common.http.envelope import ok, read_model
from libs.common.http.errors import NotFound
from libs.common.http.query import path_id
from libs.common.models.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from services.auth.keys import POOL
from services.auth.pages import tenant_page
from services.auth.principals import require_principal

log = logging.getLogger(__name__)

_COLUMNS = "id, name, prefix, scopes, created_at, last_used_at, revoked_at"


def _out(row: Any) -> ApiKeyOut:
    return ApiKeyOut.model_validate(dict(row))


async def create_key(request: web.Request) -> web.Response:
    who = await require_principal(request, Scope.ADMIN)
    body = await read_model(request, ApiKeyCreate)
    key = api_keys.new_key()
    row = await request.app[POOL].fetchrow(
        f"""INSERT INTO api_keys (id, tenant_id, created_by, name, prefix, digest, scopes)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}""",
        uuid.uuid4(),
        who.tenant_id,
        who.user_id or who.key_id,
        body.name,
        api_keys.shown_prefix(key),
        api_keys.digest(key),
        [s.value for s in body.scopes],
    )
    log.info(
        "api key created",
        extra={"key_id": str(row["id"]), "tenant_id": str(who.tenant_id), "scopes": [s.value for s in body.scopes]},
    )
    return ok(ApiKeyCreated.model_validate({**dict(row), "key": key}), status=201)


async def list_keys(request: web.Request) -> web.Response:
    who = await require_principal(request, Scope.ADMIN)
    return await tenant_page(request, "api_keys", _COLUMNS, who.tenant_id, _out)


async def revoke_key(request: web.Request) -> web.Response:
    who = await require_principal(request, Scope.ADMIN)
    key_id = path_id(request, "key_id", "API key not found")
    row = await request.app[POOL].fetchrow(
        f"""UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 AND tenant_id = $2
            RETURNING {_COLUMNS}""",
        key_id,
        who.tenant_id,
    )
    if row is None:
        raise NotFound("API key not found")
    log.info("api key revoked", extra={"key_id": str(key_id), "tenant_id": str(who.tenant_id)})
    return ok(_out(row))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/keys", create_key)
    app.router.add_get("/api/keys", list_keys)
    app.router.add_delete("/api/keys/{key_id}", revoke_key)
