"""Typed application keys of the gateway's aiohttp app."""

from __future__ import annotations

import ipaddress
import uuid

import aiohttp
import asyncpg
from aiohttp import web

from libs.common.auth.jwt_verify import Claims, JwksVerifier
from libs.common.bus import Bus
from libs.common.keyring import KeyHolder, KeyRing
from libs.common.ratelimit import TokenBuckets
from services.gateway.api_keys import ApiKeyCache
from services.gateway.hooks.cache import WorkflowCache
from services.gateway.hooks.publish_metrics import PublishLatency
from services.gateway.hooks.ratelimit import TenantRateLimiter
from services.gateway.replays import ReplayWorker
from services.gateway.settings import GatewaySettings

SETTINGS = web.AppKey("settings", GatewaySettings)
POOL = web.AppKey("pool", asyncpg.Pool)
BUS = web.AppKey("bus", Bus)
VERIFIER = web.AppKey("verifier", JwksVerifier)
HTTP = web.AppKey("http", aiohttp.ClientSession)
CACHE = web.AppKey("cache", WorkflowCache)
LIMITER = web.AppKey("limiter", TenantRateLimiter)
# The vault's key-encryption keys: webhook secrets are sealed with them.
KEKS = web.AppKey("keks", KeyHolder[KeyRing])
# Peers whose X-Forwarded-For is believed; bad webhook signatures per source.
TRUSTED_PROXIES = web.AppKey("trusted_proxies", list[ipaddress.IPv4Network | ipaddress.IPv6Network])
BAD_SIGNATURES = web.AppKey("bad_signatures", TokenBuckets)
PUBLISH_LATENCY = web.AppKey("publish_latency", PublishLatency)
REPLAYS = web.AppKey("replays", ReplayWorker)
API_KEYS = web.AppKey("api_keys", ApiKeyCache)

# Request keys.
CLAIMS = web.RequestKey("claims", Claims)  # a user's token (absent for an API key)
TENANT = web.RequestKey("tenant", uuid.UUID)  # the caller's tenant, from a token or an API key
