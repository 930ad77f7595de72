"""``/api/credentials``: create, list and delete; the secret goes in and never comes out.

The list is oldest first, paged by ``limit`` (1 to ``IPAAS_AUTH_CREDENTIALS_PAGE_MAX``)
and ``cursor`` with the rules of :mod:`libs.common.models.queries`: an invalid
value is a 422 naming the parameter.  The last page has no ``meta``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import web
from opentelemetry import trace

from libs.common.auth.api_keys import Scope
from libs.common.http.envelope import ok, parse_model, read_model
from libs.common.http.errors import NotFound, ValidationFailed
from libs.common.http.query import path_id
from libs.common.models.api import DeletedOut
from libs.common.models.auth import SECRET_MODELS, CredentialCreate, CredentialOut
from services.auth.keys import KEKS, POOL
from services.auth.pages import tenant_page
from services.auth.principals import require_principal

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


def _public(row: Any) -> CredentialOut:
    return CredentialOut.model_validate(dict(row))


async def create_credential(request: web.Request) -> web.Response:
    claims = await require_principal(request, Scope.WRITE)
    body = await read_model(request, CredentialCreate)
    try:
        secret_model = parse_model(SECRET_MODELS[body.type], body.secret)
    except ValidationFailed as exc:
        for detail in exc.details or []:
            detail["field"] = f"secret.{detail['field']}"
        raise
    secret = secret_model.model_dump(mode="json", exclude_none=True)
    credential_id = uuid.uuid4()
    with tracer.start_as_current_span(
        "credentials.create",
        attributes={
            "ipaas.tenant_id": str(claims.tenant_id),
            "ipaas.cred_id": str(credential_id),
            "ipaas.cred_type": body.type,
        },
    ):
        sealed = request.app[KEKS].ring.encrypt(claims.tenant_id, credential_id, secret)
        row = await request.app[POOL].fetchrow(
            """INSERT INTO credentials (id, tenant_id, name, type, kek_id, wrapped_dek, ciphertext)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, name, type, created_at""",
            credential_id,
            claims.tenant_id,
            body.name,
            body.type,
            sealed.kek_id,
            sealed.wrapped_dek,
            sealed.ciphertext,
        )
    log.info(
        "credential created",
        extra={"cred_id": str(credential_id), "type": body.type, "tenant_id": str(claims.tenant_id)},
    )
    return ok(_public(row), status=201)


async def list_credentials(request: web.Request) -> web.Response:
    claims = await require_principal(request, Scope.READ)
    return await tenant_page(request, "credentials", "id, name, type, created_at", claims.tenant_id, _public)


async def delete_credential(request: web.Request) -> web.Response:
    claims = await require_principal(request, Scope.WRITE)
    credential_id = path_id(request, "credential_id", "credential not found")
    deleted = await request.app[POOL].fetchval(
        "DELETE FROM credentials WHERE id = $1 AND tenant_id = $2 RETURNING id", credential_id, claims.tenant_id
    )
    if deleted is None:
        raise NotFound("credential not found")
    log.info("credential deleted", extra={"cred_id": str(credential_id), "tenant_id": str(claims.tenant_id)})
    return ok(DeletedOut(id=credential_id))
