"""Typed application keys of the auth app."""

from __future__ import annotations

import ipaddress

import asyncpg
from aiohttp import web

from libs.common.bus import Bus
from libs.common.keyring import KeyHolder
from services.auth.passwords import Passwords
from services.auth.rate_limit import TokenBuckets
from services.auth.settings import AuthSettings
from services.auth.tokens import TokenService
from services.auth.vault import KekRing

# The current KEK ring (replaced as a whole when the keys are reloaded).
KekHolder = KeyHolder[KekRing]

SETTINGS = web.AppKey("auth_settings", AuthSettings)
POOL = web.AppKey("pool", asyncpg.Pool)
BUS = web.AppKey("bus", Bus)
TOKENS = web.AppKey("tokens", TokenService)
KEKS = web.AppKey("keks", KekHolder)
PASSWORDS = web.AppKey("passwords", Passwords)
LOGIN_EMAIL_LIMIT = web.AppKey("login_email_limit", TokenBuckets)
LOGIN_IP_LIMIT = web.AppKey("login_ip_limit", TokenBuckets)
REGISTER_IP_LIMIT = web.AppKey("register_ip_limit", TokenBuckets)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", list[ipaddress.IPv4Network | ipaddress.IPv6Network])
