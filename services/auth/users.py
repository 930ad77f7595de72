"""``POST /api/auth/register`` and ``POST /api/auth/login``.

Registration never tells whether an email is registered: a new email and a
registered one both get 201 with ``{"user_id", "tenant_id"}`` (the contract's
shape), after the same work (a password hash and the same inserts, which
fail on the unique email index for a registered one and roll back).  For a
registered email the ids are fresh random ones that belong to nothing, and
nothing changes: the account keeps its password.  No route takes those ids
as input (a caller's tenant comes from its token), so a client cannot tell
them from real ones.

Login answers every failure with the same 401 body, after the same hashing
work (an unknown email is checked against a dummy hash).  Failed attempts
count against two budgets: per (email, client) and per client (see
:mod:`services.auth.rate_limit`).

Both answer 503 ``server_busy`` with ``Retry-After`` when the hashing queue
is full (see :mod:`services.auth.passwords`); such an attempt costs no budget.
"""

from __future__ import annotations

import logging
import uuid

import asyncpg
from aiohttp import web

from libs.common.http.envelope import ok, read_model
from libs.common.http.errors import RateLimited, ServiceUnavailable, Unauthorized, ValidationFailed
from libs.common.models.auth import Login, RegisteredOut, Registration, TokenOut
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
from services.auth.passwords import HashingBusy
from services.auth.rate_limit import client_key, email_client_key

log = logging.getLogger(__name__)

INVALID_LOGIN = "email or password is incorrect"
# The user, and the latest "revoke all" still in force: a token issued now must not predate it.
LOGIN_SQL = """
SELECT u.id, u.tenant_id, u.password_hash,
       (SELECT max(r.not_before) FROM token_revocations r
        WHERE r.user_id = u.id AND r.not_before IS NOT NULL AND r.expires_at > now()) AS not_before
FROM users u WHERE lower(u.email) = $1
"""
BUSY_RETRY_AFTER_SECONDS = 1


class Busy(ServiceUnavailable):
    code = "server_busy"


def _busy(exc: HashingBusy) -> Busy:
    return Busy("too many password checks in progress; retry shortly", retry_after=BUSY_RETRY_AFTER_SECONDS)


def _check_password_length(request: web.Request, password: str) -> None:
    low, high = request.app[SETTINGS].password_min_length, request.app[SETTINGS].password_max_length
    if not low <= len(password) <= high:
        message = f"password must be {low} to {high} characters"
        detail = {"field": "password", "type": "string_length", "message": message}
        raise ValidationFailed("request body failed validation", details=[detail])


async def register(request: web.Request) -> web.Response:
    app = request.app
    client = client_key(request, app[TRUSTED_PROXIES])
    limit = app[REGISTER_IP_LIMIT]
    wait = limit.retry_after(client)
    if wait > 0:
        raise RateLimited("too many registrations; retry later", retry_after=wait)
    body = await read_model(request, Registration)
    _check_password_length(request, body.password)
    limit.take(client)
    try:
        password_hash = await app[PASSWORDS].hash(body.password)
    except HashingBusy as exc:
        limit.give_back(client)
        raise _busy(exc) from exc
    user_id, tenant_id = uuid.uuid4(), uuid.uuid4()
    try:
        async with app[POOL].acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant_id, body.email)
            await conn.execute(
                "INSERT INTO users (id, tenant_id, email, password_hash) VALUES ($1, $2, $3, $4)",
                user_id,
                tenant_id,
                body.email,
                password_hash,
            )
    except asyncpg.UniqueViolationError:
        # Already registered: the same answer as for a new email; these ids belong to nothing.
        log.info("registration of a registered email; answered as a new one", extra={"client": client})
    else:
        log.info("user registered", extra={"user_id": str(user_id), "tenant_id": str(tenant_id)})
    return ok(RegisteredOut(user_id=user_id, tenant_id=tenant_id), status=201)


async def login(request: web.Request) -> web.Response:
    app = request.app
    body = await read_model(request, Login)
    if len(body.password) > app[SETTINGS].password_max_length:
        # Not worth a hash; the same answer as any other failed login.
        raise Unauthorized(INVALID_LOGIN, code="invalid_credentials")
    client = client_key(request, app[TRUSTED_PROXIES])
    email_key = email_client_key(body.email, client)
    by_email, by_client = app[LOGIN_EMAIL_LIMIT], app[LOGIN_IP_LIMIT]
    wait = max(by_email.retry_after(email_key), by_client.retry_after(client))
    if wait > 0:
        log.warning("login rate limited", extra={"client": client})
        raise RateLimited("too many login attempts; retry later", retry_after=wait)
    # Take before verifying so parallel guesses cannot overrun the budget; a success gives it back.
    by_email.take(email_key)
    by_client.take(client)
    try:
        row = await app[POOL].fetchrow(LOGIN_SQL, body.email)
        matched = await app[PASSWORDS].verify(row["password_hash"] if row else None, body.password)
    except BaseException as exc:
        # Not a failed guess (the database is away, the queue is full, the client left): it costs nothing.
        by_email.give_back(email_key)
        by_client.give_back(client)
        if isinstance(exc, HashingBusy):
            raise _busy(exc) from exc
        raise
    if row is None or not matched:
        log.info("login failed", extra={"client": client})
        raise Unauthorized(INVALID_LOGIN, code="invalid_credentials")
    by_email.give_back(email_key)
    by_client.give_back(client)
    passwords = app[PASSWORDS]
    if passwords.needs_rehash(row["password_hash"]):
        # The hashing parameters were raised since this hash was made: upgrade it now (best effort).
        try:
            new_hash = await passwords.hash(body.password)
        except HashingBusy:
            log.info("password rehash skipped: hashing queue full", extra={"user_id": str(row["id"])})
        else:
            await app[POOL].execute("UPDATE users SET password_hash = $2 WHERE id = $1", row["id"], new_hash)
    issued = app[TOKENS].issue(row["id"], row["tenant_id"], not_before=row["not_before"])
    log.info("login succeeded", extra={"user_id": str(row["id"]), "kid": issued.kid})
    return ok(
        TokenOut(access_token=issued.access_token, expires_in=issued.expires_in), headers={"Cache-Control": "no-store"}
    )
