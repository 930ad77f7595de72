"""``/api/credentials``: create, list and delete; the secret goes in and never comes out."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from opentelemetry import trace

from libs.common.http.envelope import ok, parse_model, read_model
from libs.common.http.errors import BadRequest, NotFound, ValidationFailed
from services.auth.authn import require_claims
from services.auth.keys import KEKS, POOL, SETTINGS
from services.auth.models import SECRET_MODELS, CredentialCreate

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

DEFAULT_PAGE = 50


def _public(row: Any) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"], "type": row["type"],
            "created_at": row["created_at"].isoformat()}


async def create_credential(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    body = await read_model(request, CredentialCreate)
    try:
        secret_model = parse_model(SECRET_MODELS[body.type], body.secret)
    except ValidationFailed as exc:
        for detail in exc.details or []:
            detail["field"] = f"secret.{detail['field']}"
        raise
    secret = secret_model.model_dump(mode="json")
    credential_id = uuid.uuid4()
    with tracer.start_as_current_span(
        "credentials.create",
        attributes={"ipaas.tenant_id": str(claims.tenant_id), "ipaas.credential.id": str(credential_id),
                    "ipaas.credential.type": body.type},
    ):
        sealed = request.app[KEKS].ring.encrypt(claims.tenant_id, credential_id, secret)
        row = await request.app[POOL].fetchrow(
            """INSERT INTO credentials (id, tenant_id, name, type, kek_id, wrapped_dek, ciphertext)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, name, type, created_at""",
            credential_id, claims.tenant_id, body.name, body.type,
            sealed.kek_id, sealed.wrapped_dek, sealed.ciphertext,
        )
    log.info("credential created", extra={"cred_id": str(credential_id), "type": body.type,
                                          "tenant_id": str(claims.tenant_id)})
    return ok(_public(row), status=201)


def _decode_cursor(value: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(value.encode() + b"=" * (-len(value) % 4)))
        return datetime.fromisoformat(raw["t"]), uuid.UUID(raw["i"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise BadRequest("cursor is not valid", code="invalid_cursor") from exc


def _encode_cursor(created_at: datetime, credential_id: uuid.UUID) -> str:
    raw = json.dumps({"t": created_at.isoformat(), "i": str(credential_id)}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_PAGE
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest("limit must be an integer", code="invalid_limit") from exc
    maximum = request.app[SETTINGS].credentials_page_max
    if not 1 <= value <= maximum:
        raise BadRequest(f"limit must be between 1 and {maximum}", code="invalid_limit")
    return value


async def list_credentials(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    limit = _limit(request)
    cursor = request.query.get("cursor")
    after = _decode_cursor(cursor) if cursor else None
    rows = await request.app[POOL].fetch(
        """SELECT id, name, type, created_at FROM credentials
           WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
           ORDER BY created_at, id LIMIT $4""",
        claims.tenant_id, after[0] if after else None, after[1] if after else None, limit + 1,
    )
    meta: dict[str, Any] = {}
    if len(rows) > limit:
        rows = rows[:limit]
        meta["next_cursor"] = _encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return ok([_public(r) for r in rows], meta=meta)


async def delete_credential(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    try:
        credential_id = uuid.UUID(request.match_info["credential_id"])
    except ValueError as exc:
        raise NotFound("credential not found") from exc
    deleted = await request.app[POOL].fetchval(
        "DELETE FROM credentials WHERE id = $1 AND tenant_id = $2 RETURNING id", credential_id, claims.tenant_id
    )
    if deleted is None:
        raise NotFound("credential not found")
    log.info("credential deleted", extra={"cred_id": str(credential_id),
                                          "tenant_id": str(claims.tenant_id)})
    return ok({"id": str(credential_id), "deleted": True})
