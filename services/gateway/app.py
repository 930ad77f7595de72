"""Wiring: the gateway's app on the service kit (:mod:`libs.common.kit`), its resources and its routes."""

from __future__ import annotations

import logging
from contextlib import suppress

import aiohttp
import aiohttp_cors
from aiohttp import web

from libs.common.auth.jwt_verify import JwksVerifier
from libs.common.auth.revocations import RevocationFeed, feed_url_for
from libs.common.bus.provision import Needs
from libs.common.db.errors import STORAGE_ERRORS
from libs.common.http.client_ip import parse_networks
from libs.common.http.keys import METRICS, RETRY_AFTER
from libs.common.http.middleware import direct
from libs.common.keyring import KeyHolder
from libs.common.kit import Kit, service_app
from libs.common.ratelimit import TokenBuckets
from libs.common.settings import split_list
from services.gateway import openapi
from services.gateway.api_keys import ApiKeyCache
from services.gateway.console import routes as console
from services.gateway.hooks.cache import WorkflowCache, pool_loader
from services.gateway.hooks.ingest import ingest
from services.gateway.hooks.invalidation import clear_on_reconnect, subscribe_invalidations
from services.gateway.hooks.key_reload import reload_keys
from services.gateway.hooks.publish_metrics import PublishLatency
from services.gateway.hooks.ratelimit import TenantRateLimiter
from services.gateway.hooks.secret_store import load_ring, seal_legacy
from services.gateway.keys import (
    API_KEYS,
    BAD_SIGNATURES,
    BUS,
    CACHE,
    HTTP,
    KEKS,
    LIMITER,
    POOL,
    PUBLISH_LATENCY,
    REPLAYS,
    SETTINGS,
    TRUSTED_PROXIES,
    VERIFIER,
)
from services.gateway.middleware import auth_middleware, hook_span, tracing_middleware
from services.gateway.outbox import OutboxRelay
from services.gateway.replays import ReplayWorker
from services.gateway.routes import dev_echo, executions, proxy, runs, workflows
from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

RELAY = web.AppKey("outbox_relay", OutboxRelay)

CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id")
CORS_EXPOSE_HEADERS = ("X-Request-Id", "traceparent", "Retry-After")


async def start(kit: Kit[GatewaySettings]) -> None:
    """The gateway's resources and loops, on the kit's pool and bus."""
    app, s, pool, bus = kit.app, kit.settings, kit.pool, kit.bus
    app[POOL], app[BUS] = pool, bus
    app[KEKS] = keys = KeyHolder(await load_ring(s))  # no keyring: the gateway does not start (KeyConfigError)
    app[HTTP] = aiohttp.ClientSession(auto_decompress=False)
    # The verifier and the revocation feed own their sessions: the forwarding session does not decompress.
    revocations = RevocationFeed(
        s.revocations_url or feed_url_for(s.jwks_url),
        poll_seconds=s.revocation_poll_seconds,
        max_stale_seconds=s.revocation_max_stale_seconds,
    )
    revocations.start()
    app[VERIFIER] = JwksVerifier(s.jwks_url, issuer=s.jwt_issuer, audience=s.jwt_audience, revocations=revocations)
    for close in (app[HTTP].close, app[VERIFIER].close, revocations.close):
        kit.on_close(close)
    try:
        sealed = await seal_legacy(pool, keys.ring)
    except STORAGE_ERRORS as exc:  # the look-up seals a workflow's secret anyway when it meets one
        log.warning("plaintext webhook secrets not sealed at start", extra={"error": type(exc).__name__})
    else:
        if sealed:
            log.info("plaintext webhook secrets sealed at start", extra={"workflows": sealed})
    app[CACHE] = cache = WorkflowCache(
        pool_loader(pool, keys),
        ttl=s.cache_ttl_seconds,
        negative_ttl=s.cache_negative_ttl_seconds,
        max_entries=s.cache_max_entries,
        stale=s.cache_stale_seconds,
    )
    app[LIMITER] = limiter = TenantRateLimiter.share(
        s.webhook_rate_per_second, s.webhook_burst, replicas=s.replicas, max_tenants=s.rate_limit_max_tenants
    )
    log.info(
        "webhook rate limit",
        extra={
            "tenant_rate_per_second": s.webhook_rate_per_second,
            "tenant_burst": s.webhook_burst,
            "replicas": s.replicas,
            "replica_rate_per_second": limiter.rate,
            "replica_burst": limiter.burst,
        },
    )
    subscription = await subscribe_invalidations(bus, cache)
    clear_on_reconnect(bus, cache)
    kit.on_close(subscription.unsubscribe)
    app[RELAY] = relay = OutboxRelay(
        pool,
        bus,
        s.db.url,
        batch=s.outbox_batch,
        poll_seconds=s.outbox_poll_seconds,
        max_backoff_seconds=s.outbox_max_backoff_seconds,
        publish_timeout=s.nats.publish_timeout_seconds,
        max_attempts=s.outbox_max_attempts,
        registry=app[METRICS].registry,
    )
    kit.task(relay.run(), name="outbox-relay", stop=relay.stop, wait=10)
    if s.keks_dir is not None and s.keys_reload_seconds > 0:
        kit.every(s.keys_reload_seconds, lambda: reload_keys(s, keys), name="key reload")
    app[REPLAYS] = replays = ReplayWorker(
        pool, batch=s.replay_batch, poll_seconds=s.replay_poll_seconds, pause_seconds=s.replay_pause_seconds
    )
    # A batch under way commits or rolls back whole; the job goes on elsewhere or later.
    kit.task(replays.run(), name="dlq-replays", stop=replays.stop, wait=10)
    app[API_KEYS] = api_keys = ApiKeyCache(
        pool, refresh_seconds=s.api_key_refresh_seconds, max_stale_seconds=s.api_key_max_stale_seconds
    )
    with suppress(*STORAGE_ERRORS):
        await api_keys.refresh()  # before the first request, if Postgres answers (else the loop retries)
    kit.task(api_keys.run(), name="api-keys", stop=api_keys.stop, wait=5)


def _cors(app: web.Application, origins: list[str]) -> None:
    make_options = aiohttp_cors.ResourceOptions
    options = make_options(
        allow_credentials=False,
        allow_headers=CORS_ALLOW_HEADERS,  # type: ignore[no-untyped-call]
        expose_headers=CORS_EXPOSE_HEADERS,
        max_age=600,
    )
    cors = aiohttp_cors.setup(app, defaults=dict.fromkeys(origins, options))
    for route in list(app.router.routes()):
        resource = route.resource
        if resource is not None and route.method not in ("*", "HEAD") and resource.canonical.startswith("/api/"):
            cors.add(route)


def create_app(settings: GatewaySettings) -> web.Application:
    """The gateway's app: needs Postgres, the bus, and the EVENTS and WORKFLOW_CHANGES streams; runs :func:`start`."""
    streams = Needs((settings.nats.events_stream, settings.nats.changes_stream))
    app = service_app(settings, start, streams=streams, client_max_size=settings.max_body_bytes)
    app.middlewares.append(tracing_middleware)
    app.middlewares.append(auth_middleware)
    app[SETTINGS] = settings
    app[RETRY_AFTER] = settings.retry_after_seconds  # also on the middleware's 503s (Postgres away)
    app[TRUSTED_PROXIES] = parse_networks(settings.trusted_proxies)
    app[PUBLISH_LATENCY] = PublishLatency(app[METRICS].registry)
    app[BAD_SIGNATURES] = TokenBuckets(
        burst=settings.bad_signature_burst,
        per_minute=settings.bad_signature_per_minute,
        max_keys=settings.bad_signature_max_sources,
    )
    runs.add_routes(app)  # before /api/workflows/{id}: holds /api/workflows/dry-run
    workflows.add_routes(app)
    executions.add_routes(app)
    proxy.add_routes(app)
    # Past the middlewares above (no token, its own server span); the envelope middleware still runs.
    app.router.add_post("/hooks/{workflow_id}", direct(hook_span(ingest)))
    dev_echo.add_routes(app, settings)  # development mode only
    openapi.add_routes(app)
    console.add_routes(app, settings)  # static pages of the public API's own client; not in /openapi.json
    origins = split_list(settings.cors_origins)
    if origins:
        _cors(app, origins)
    return app
