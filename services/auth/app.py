"""The auth service's aiohttp application and the lifetimes of its resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from libs.common.auth.revocations import FEED_PATH
from libs.common.bus import Bus
from libs.common.db import create_pool
from libs.common.http.app import base_app
from libs.common.http.keys import READINESS_CHECKS, SHUTTING_DOWN
from libs.common.models.auth import Jwks
from services.auth import api_key_routes
from services.auth.credentials import create_credential, delete_credential, list_credentials
from services.auth.key_loading import load_keys
from services.auth.keys import (
    BUS,
    KEKS,
    LOGIN_EMAIL_LIMIT,
    LOGIN_IP_LIMIT,
    PASSWORDS,
    POOL,
    REGISTER_IP_LIMIT,
    SETTINGS,
    TOKENS,
    TRUSTED_PROXIES,
    KekHolder,
)
from services.auth.passwords import Passwords
from services.auth.rate_limit import TokenBuckets, parse_networks
from services.auth.resolver import CredentialResolver
from services.auth.revocation import prune
from services.auth.sessions import logout, logout_all, revocations
from services.auth.settings import AuthSettings
from services.auth.tokens import TokenService
from services.auth.users import login, register

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 300.0


async def jwks(request: web.Request) -> web.Response:
    """The public keys in their validity window, as a plain JWKS (no envelope)."""
    document = Jwks.model_validate(request.app[TOKENS].ring.jwks())
    return web.json_response(document.model_dump(mode="json"), headers={"Cache-Control": "public, max-age=60"})


async def create_app(settings: AuthSettings) -> web.Application:
    # Postgres being away is a 503 with Retry-After on every route: the shared envelope middleware maps it.
    app = base_app("auth", client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    ring, keks = await load_keys(settings)
    app[TOKENS] = TokenService(
        ring,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.token_ttl_seconds,
        leeway_seconds=settings.token_leeway_seconds,
    )
    app[KEKS] = KekHolder(keks)
    # Building it hashes a dummy password once: off the loop.
    app[PASSWORDS] = await asyncio.to_thread(
        Passwords,
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        workers=settings.hash_workers,
        max_pending=settings.hash_queue_max,
    )
    app[LOGIN_EMAIL_LIMIT] = TokenBuckets(
        burst=settings.login_email_burst,
        per_minute=settings.login_email_per_minute,
        max_keys=settings.rate_limit_max_keys,
    )
    app[LOGIN_IP_LIMIT] = TokenBuckets(
        burst=settings.login_ip_burst, per_minute=settings.login_ip_per_minute, max_keys=settings.rate_limit_max_keys
    )
    app[REGISTER_IP_LIMIT] = TokenBuckets(
        burst=settings.register_ip_burst,
        per_minute=settings.register_ip_per_minute,
        max_keys=settings.rate_limit_max_keys,
    )
    app[TRUSTED_PROXIES] = parse_networks(settings.trusted_proxies)

    app.cleanup_ctx.append(_passwords_ctx)
    app.cleanup_ctx.append(_pool_ctx)
    app.cleanup_ctx.append(_bus_ctx)
    app.cleanup_ctx.append(_resolver_ctx)
    app.cleanup_ctx.append(_key_reload_ctx)
    app.cleanup_ctx.append(_prune_ctx)

    app.router.add_post("/api/auth/register", register)
    app.router.add_post("/api/auth/login", login)
    app.router.add_post("/api/auth/logout", logout)
    app.router.add_post("/api/auth/logout-all", logout_all)
    app.router.add_get(FEED_PATH, revocations)
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_post("/api/credentials", create_credential)
    app.router.add_get("/api/credentials", list_credentials)
    app.router.add_delete("/api/credentials/{credential_id}", delete_credential)
    api_key_routes.add_routes(app)
    return app


@asynccontextmanager
async def _passwords_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await asyncio.to_thread(app[PASSWORDS].close)


@asynccontextmanager
async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = await create_pool(app[SETTINGS].db)
    app[POOL] = pool

    async def db_ready() -> bool:
        return bool(await pool.fetchval("SELECT 1"))

    app[READINESS_CHECKS]["db"] = db_ready
    yield
    await pool.close()


@asynccontextmanager
async def _bus_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    bus = await Bus.connect(settings.nats, name="auth", inbox_prefix=settings.nats_inbox_prefix)
    app[BUS] = bus

    async def nats_ready() -> bool:
        return bus.is_connected

    app[READINESS_CHECKS]["nats"] = nats_ready
    yield
    await bus.drain()


@asynccontextmanager
async def _resolver_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    resolver = CredentialResolver(
        app[BUS], app[POOL], app[KEKS], queue=settings.resolve_queue, concurrency=settings.resolve_concurrency
    )
    await resolver.start()
    yield
    await resolver.stop()


@asynccontextmanager
async def _key_reload_ctx(app: web.Application) -> AsyncIterator[None]:
    """Re-read key files periodically, so keys rotate without a restart."""
    settings = app[SETTINGS]
    if settings.keys_reload_seconds <= 0 or (settings.signing_keys_dir is None and settings.keks_dir is None):
        yield
        return
    task = asyncio.create_task(_reload_loop(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _reload_loop(app: web.Application) -> None:
    settings = app[SETTINGS]
    stop = app[SHUTTING_DOWN]
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.keys_reload_seconds)
            return
        try:
            ring, keks = await load_keys(settings)
        except Exception:
            log.exception("key reload failed; keeping the current keys")
            continue
        tokens, holder = app[TOKENS], app[KEKS]
        if ring.kids != tokens.ring.kids or keks.kids != holder.ring.kids:
            log.info("keys reloaded", extra={"signing_kids": ring.kids, "kek_ids": keks.kids})
        tokens.ring = ring
        holder.ring = keks


@asynccontextmanager
async def _prune_ctx(app: web.Application) -> AsyncIterator[None]:
    """Delete revocations that refuse no valid token any more (every replica; the DELETE is idempotent)."""
    task = asyncio.create_task(_prune_loop(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _prune_loop(app: web.Application) -> None:
    stop = app[SHUTTING_DOWN]
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=PRUNE_INTERVAL_SECONDS)
            return
        try:
            removed = await prune(app[POOL])
        except Exception:
            log.warning("pruning token revocations failed", exc_info=True)
            continue
        if removed:
            log.info("expired token revocations pruned", extra={"removed": removed})
