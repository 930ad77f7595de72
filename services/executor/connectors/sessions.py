"""One pooled aiohttp session per connector host, closed together at shutdown."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver
from yarl import URL

from services.executor.errors import TransientError

USER_AGENT = "ipaas-executor/0.1"
# Bodies are encoded with orjson up front (aiohttp's ``json=`` would use the slower stdlib encoder).
JSON_HEADERS = {"Content-Type": "application/json"}


def json_body(value: Any) -> bytes:
    """``value`` as JSON bytes; strings orjson refuses (lone surrogates) fall back to escaped stdlib JSON."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


class ClientSessions:
    """Sessions keyed by ``scheme://host:port``: connections are reused per host.

    Sessions are shared by every tenant, so they keep no cookies: a cookie one
    tenant's target sets must never ride along on another tenant's request.
    """

    def __init__(self, *, connections_per_host: int, timeout_seconds: float) -> None:
        self._limit = connections_per_host
        # The action timeout (asyncio.timeout around each call) bounds every request; a per-request
        # aiohttp timer on top of it would only cost time.
        del timeout_seconds
        self._timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=None, sock_read=None)
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def for_url(self, url: URL) -> aiohttp.ClientSession:
        return self._session(
            f"{url.scheme}://{url.host}:{url.port}",
            lambda: aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit, ttl_dns_cache=60),
        )

    def custom(self, key: str, resolver: AbstractResolver) -> aiohttp.ClientSession:
        """A session whose connector resolves through ``resolver`` (the SSRF-pinning one)."""
        return self._session(
            key,
            lambda: aiohttp.TCPConnector(
                limit=self._limit * 4, limit_per_host=self._limit, resolver=resolver, use_dns_cache=False
            ),
        )

    def _session(self, key: str, connector: Callable[[], aiohttp.TCPConnector]) -> aiohttp.ClientSession:
        """The open session kept under ``key``, or a new one on a new ``connector()``."""
        session = self._sessions.get(key)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=connector(),
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._sessions[key] = session
        return session

    async def post_json(
        self, service: str, url: URL, message: Any, headers: Mapping[str, str]
    ) -> tuple[int, str, Mapping[str, str]]:
        """POST ``message`` as JSON, no redirects: the answer's status, text and headers (network errors transient)."""
        try:
            async with self.for_url(url).post(
                url, data=json_body(message), headers=headers, allow_redirects=False
            ) as resp:
                return resp.status, await resp.text(errors="replace"), resp.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise network_error(service, exc) from exc

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


def network_error(service: str, exc: BaseException) -> TransientError:
    """Connection failures and timeouts are transient."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return TransientError(f"{service} timed out")
    if isinstance(exc, socket.gaierror):
        return TransientError(f"{service}: name resolution failed")
    return TransientError(f"{service} unreachable: {type(exc).__name__}")
