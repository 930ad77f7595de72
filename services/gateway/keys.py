"""Typed application keys of the gateway's aiohttp app."""

from __future__ import annotations

import aiohttp
import asyncpg
from aiohttp import web

from libs.common.auth.jwt_verify import Claims, JwksVerifier
from libs.common.bus import Bus
from services.gateway.hooks.cache import WorkflowCache
from services.gateway.hooks.ratelimit import TenantRateLimiter
from services.gateway.settings import GatewaySettings

SETTINGS = web.AppKey("settings", GatewaySettings)
POOL = web.AppKey("pool", asyncpg.Pool)
BUS = web.AppKey("bus", Bus)
VERIFIER = web.AppKey("verifier", JwksVerifier)
HTTP = web.AppKey("http", aiohttp.ClientSession)
CACHE = web.AppKey("cache", WorkflowCache)
LIMITER = web.AppKey("limiter", TenantRateLimiter)

# Request keys.
CLAIMS = web.RequestKey("claims", Claims)
