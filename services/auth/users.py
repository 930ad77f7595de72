"""``POST /api/auth/register`` and ``POST /api/auth/login``."""

from __future__ import annotations

import logging
import uuid

import asyncpg
from aiohttp import web

from libs.common.http.envelope import ok, read_model
from libs.common.http.errors import Conflict, RateLimited, Unauthorized, ValidationFailed
from services.auth.keys import (
    LOGIN_EMAIL_LIMIT,
    LOGIN_IP_LIMIT,
    PASSWORDS,
    POOL,
    REGISTER_IP_LIMIT,
    SETTINGS,
    TOKENS,
    TRUSTED_PROXIES,
)
from services.auth.models import Credentials
from services.auth.rate_limit import client_address

log = logging.getLogger(__name__)

INVALID_LOGIN = "email or password is incorrect"


def _check_password_length(request: web.Request, password: str) -> None:
    settings = request.app[SETTINGS]
    if not settings.password_min_length <= len(password) <= settings.password_max_length:
        raise ValidationFailed(
            "request body failed validation",
            details=[{"field": "password", "type": "string_length",
                      "message": f"password must be {settings.password_min_length} to "
                                 f"{settings.password_max_length} characters"}],
        )


async def register(request: web.Request) -> web.Response:
    app = request.app
    address = client_address(request, app[TRUSTED_PROXIES])
    limit = app[REGISTER_IP_LIMIT]
    wait = limit.retry_after(address)
    if wait > 0:
        raise RateLimited("too many registrations; retry later", retry_after=wait)
    body = await read_model(request, Credentials)
    _check_password_length(request, body.password)
    limit.take(address)
    password_hash = await app[PASSWORDS].hash(body.password)
    user_id, tenant_id = uuid.uuid4(), uuid.uuid4()
    try:
        async with app[POOL].acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant_id, body.email)
            await conn.execute(
                "INSERT INTO users (id, tenant_id, email, password_hash) VALUES ($1, $2, $3, $4)",
                user_id, tenant_id, body.email, password_hash,
            )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("this email is already registered", code="email_taken") from exc
    log.info("user registered", extra={"user_id": str(user_id), "tenant_id": str(tenant_id)})
    return ok({"user_id": str(user_id), "tenant_id": str(tenant_id)}, status=201)


async def login(request: web.Request) -> web.Response:
    app = request.app
    body = await read_model(request, Credentials)
    if len(body.password) > app[SETTINGS].password_max_length:
        # Not worth a hash; the same answer as any other failed login.
        raise Unauthorized(INVALID_LOGIN, code="invalid_credentials")
    address = client_address(request, app[TRUSTED_PROXIES])
    by_email, by_ip = app[LOGIN_EMAIL_LIMIT], app[LOGIN_IP_LIMIT]
    wait = max(by_email.retry_after(body.email), by_ip.retry_after(address))
    if wait > 0:
        log.warning("login rate limited", extra={"client": address})
        raise RateLimited("too many login attempts; retry later", retry_after=wait)
    # Take before verifying so parallel guesses cannot overrun the budget; a success gives it back.
    by_email.take(body.email)
    by_ip.take(address)
    try:
        row = await app[POOL].fetchrow(
            "SELECT id, tenant_id, password_hash FROM users WHERE lower(email) = $1", body.email
        )
        matched = await app[PASSWORDS].verify(row["password_hash"] if row else None, body.password)
    except BaseException:
        # Not a failed guess (the database is away, the client left): it costs nothing.
        by_email.give_back(body.email)
        by_ip.give_back(address)
        raise
    if row is None or not matched:
        log.info("login failed", extra={"client": address})
        raise Unauthorized(INVALID_LOGIN, code="invalid_credentials")
    by_email.give_back(body.email)
    by_ip.give_back(address)
    passwords = app[PASSWORDS]
    if passwords.needs_rehash(row["password_hash"]):
        # The hashing parameters were raised since this hash was made: upgrade it now.
        await app[POOL].execute("UPDATE users SET password_hash = $2 WHERE id = $1",
                                row["id"], await passwords.hash(body.password))
    issued = app[TOKENS].issue(row["id"], row["tenant_id"])
    log.info("login succeeded", extra={"user_id": str(row["id"]), "kid": issued.kid})
    return ok({"access_token": issued.access_token, "token_type": "Bearer", "expires_in": issued.expires_in},
              headers={"Cache-Control": "no-store"})
