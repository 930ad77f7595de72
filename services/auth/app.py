"""The auth service's aiohttp app on the service kit (:mod:`libs.common.kit`), and its background loops."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from libs.common.auth.revocations import FEED_PATH
from libs.common.kit import Kit, service_app
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
    """Auth's app: needs Postgres and the bus (no streams); runs :func:`start`.  Keys load first (KeyConfigError)."""
    # Postgres being away is a 503 with Retry-After on every route: the shared envelope middleware maps it.
    app = service_app(settings, start, client_max_size=settings.max_body_bytes)
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

    def buckets(burst: int, per_minute: float) -> TokenBuckets:
        return TokenBuckets(burst=burst, per_minute=per_minute, max_keys=settings.rate_limit_max_keys)

    app[LOGIN_EMAIL_LIMIT] = buckets(settings.login_email_burst, settings.login_email_per_minute)
    app[LOGIN_IP_LIMIT] = buckets(settings.login_ip_burst, settings.login_ip_per_minute)
    app[REGISTER_IP_LIMIT] = buckets(settings.register_ip_burst, settings.register_ip_per_minute)
    app[TRUSTED_PROXIES] = parse_networks(settings.trusted_proxies)

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


async def start(kit: Kit[AuthSettings]) -> None:
    """The credential responder and two loops (key reload, revocation pruning), on the kit's pool and bus."""
    app, settings = kit.app, kit.settings
    app[POOL], app[BUS] = kit.pool, kit.bus
    kit.on_close(lambda: asyncio.to_thread(app[PASSWORDS].close))
    resolver = CredentialResolver(
        kit.bus, kit.pool, app[KEKS], queue=settings.resolve_queue, concurrency=settings.resolve_concurrency
    )
    await resolver.start()
    kit.on_drain(resolver.stop)
    # Keys rotate without a restart when they come from files.
    from_files = settings.signing_keys_dir is not None or settings.keks_dir is not None
    if settings.keys_reload_seconds > 0 and from_files:
        kit.every(settings.keys_reload_seconds, lambda: _reload_keys(app), name="key reload")
    # Revocations that refuse no valid token any more go (every replica; the DELETE is idempotent).
    kit.every(PRUNE_INTERVAL_SECONDS, lambda: _prune(app), name="revocation pruning")


async def _reload_keys(app: web.Application) -> None:
    """Swap in the key files' current keys (a failure keeps the current ones)."""
    ring, keks = await load_keys(app[SETTINGS])
    tokens, holder = app[TOKENS], app[KEKS]
    if ring.kids != tokens.ring.kids or keks.kids != holder.ring.kids:
        log.info("keys reloaded", extra={"signing_kids": ring.kids, "kek_ids": keks.kids})
    tokens.ring = ring
    holder.ring = keks


async def _prune(app: web.Application) -> None:
    removed = await prune(app[POOL])
    if removed:
        log.info("expired token revocations pruned", extra={"removed": removed})
