"""Generic HTTP request: method, url, headers, templated body, ``Idempotency-Key`` = event id.

Every hop (the URL and each redirect) goes through the egress guard, and the
connection goes to the address the guard pinned.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from opentelemetry import trace
from yarl import URL

from services.executor.connectors.base import ActionCall, raise_for_status
from services.executor.connectors.sessions import ClientSessions, network_error
from services.executor.connectors.ssrf import EgressGuard, EgressRefused, PinnedResolver
from services.executor.errors import PermanentError

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_BODY_KEEP = 4096


def _body_output(raw: bytes, content_type: str) -> Any:
    text = raw[:MAX_BODY_KEEP].decode("utf-8", errors="replace")
    if "json" in content_type and len(raw) <= MAX_BODY_KEEP:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


class HttpRequestConnector:
    name = "http_request"

    def __init__(self, sessions: ClientSessions, guard: EgressGuard, *, max_redirects: int) -> None:
        self._session = sessions.custom("http_request", PinnedResolver())
        self._guard = guard
        self._max_redirects = max_redirects

    async def __call__(self, call: ActionCall) -> dict[str, Any]:
        cfg = call.config
        method = str(cfg.get("method", "POST")).upper()
        try:
            url = URL(str(cfg.get("url", "")))
        except (ValueError, TypeError) as exc:
            raise PermanentError("http_request url is not a URL") from exc
        headers = {str(k): str(v) for k, v in (call.secret.get("headers") or {}).items()}
        headers.update({str(k): str(v) for k, v in (cfg.get("headers") or {}).items()})
        headers["Idempotency-Key"] = call.event_id
        headers.update(call.trace_headers)
        body = cfg.get("body")
        kwargs: dict[str, Any] = {}
        if body is not None and method not in ("GET", "HEAD"):
            if isinstance(body, str):
                kwargs["data"] = body.encode()
            else:
                kwargs["json"] = body
        for _hop in range(self._max_redirects + 1):
            await self._guard.vet(url)
            status, resp_headers, raw, ctype = await self._send(method, url, headers, kwargs)
            if status in REDIRECTS and "Location" in resp_headers:
                url = url.join(URL(resp_headers["Location"]))
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, kwargs = "GET", {}
                continue
            if 200 <= status < 300:
                return {"status": status, "body": _body_output(raw, ctype)}
            raise_for_status("http_request target", status, raw[:200].decode("utf-8", "replace"), resp_headers)
        raise PermanentError(f"http_request: more than {self._max_redirects} redirects")

    async def _send(self, method: str, url: URL, headers: dict[str, str],
                    kwargs: dict[str, Any]) -> tuple[int, dict[str, str], bytes, str]:
        span = trace.get_current_span()  # the runner's CLIENT span (the host only: a URL may hold a secret)
        span.set_attribute("http.request.method", method)
        if url.host:
            span.set_attribute("server.address", url.host)
        try:
            async with self._session.request(method, url, headers=headers, allow_redirects=False,
                                             **kwargs) as resp:
                raw = await resp.content.read(MAX_BODY_KEEP + 1)
                return resp.status, dict(resp.headers), raw, resp.content_type
        except EgressRefused:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise network_error("http_request target", exc) from exc
