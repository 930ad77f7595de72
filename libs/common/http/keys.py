"""Typed application keys shared by every service's aiohttp app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from libs.common.http.metrics import Metrics

METRICS = web.AppKey("metrics", Metrics)
# Set as soon as SIGTERM (or SIGINT) arrives: readiness turns 503 and intake stops.
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
# The request id, echoed in the X-Request-Id response header.
REQUEST_ID = web.RequestKey("request_id", str)
# Readiness probes: name -> coroutine returning True when that dependency is usable.
READINESS_CHECKS = web.AppKey("readiness_checks", dict[str, Callable[[], Awaitable[bool]]])
# Seconds in the Retry-After of a 503 the error middleware answers for an unreachable dependency.
RETRY_AFTER = web.AppKey("retry_after_seconds", int)
DEFAULT_RETRY_AFTER = 2
