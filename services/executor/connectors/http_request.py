"""Generic HTTP request: method, url, query, headers, templated body or form, ``Idempotency-Key`` = event id.

With a ``response`` mapping (``{"customer_id": "data.id"}``), the parts of a
JSON answer it names are put in the output's ``data`` (a missing one as
``null``), read from up to ``MAX_MAPPED_BODY`` bytes of the answer.

Every hop (the URL and each redirect) goes through the egress guard, and the
connection goes to the address the guard pinned.  A hop to another origin, or
from https to http, drops the credential's headers (``redirect_headers``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp
from opentelemetry import trace
from yarl import URL

from services.executor.connectors.base import ActionCall, raise_for_status
from services.executor.connectors.configs import HttpRequest
from services.executor.connectors.redirect_headers import crosses_boundary, strip_credentials
from services.executor.connectors.sessions import ClientSessions, network_error
from services.executor.connectors.ssrf import EgressGuard, EgressRefused, PinnedResolver
from services.executor.errors import PermanentError

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_BODY_KEEP = 4096
MAX_MAPPED_BODY = 1 << 20
FORM_TYPE = "application/x-www-form-urlencoded"


async def _read_up_to(content: aiohttp.StreamReader, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (one ``read`` may return less than is coming)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def mapped(raw: bytes, mapping: dict[str, str]) -> dict[str, Any]:
    """The response parts ``mapping`` names (dotted paths of keys and list indexes); ``None`` where absent."""
    try:
        document = json.loads(raw)
    except ValueError:
        return dict.fromkeys(mapping)
    out: dict[str, Any] = {}
    for name, path in mapping.items():
        value: Any = document
        for part in path.split("."):
            if isinstance(value, dict):
                value = value.get(part)
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                value = None
            if value is None:
                break
        out[name] = value
    return out


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

    async def __call__(self, call: ActionCall[HttpRequest]) -> dict[str, Any]:
        cfg = call.config
        method = cfg.method.upper()
        try:
            url = URL(cfg.url)
        except (ValueError, TypeError) as exc:
            raise PermanentError("http_request url is not a URL") from exc
        secret_headers = {str(k): str(v) for k, v in (call.secret.get("headers") or {}).items()}
        headers = {**secret_headers, **cfg.headers, "Idempotency-Key": call.event_id}
        if cfg.query:
            url = url.update_query(cfg.query)
        headers.update(call.trace_headers)
        body = cfg.body
        form = cfg.form
        kwargs: dict[str, Any] = {}
        if form is not None and method not in ("GET", "HEAD"):
            kwargs["data"] = urlencode(form).encode()
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = FORM_TYPE
        elif body is not None and method not in ("GET", "HEAD"):
            if isinstance(body, str):
                kwargs["data"] = body.encode()
            else:
                kwargs["json"] = body
        mapping = cfg.response
        keep = MAX_MAPPED_BODY if mapping else MAX_BODY_KEEP
        for _hop in range(self._max_redirects + 1):
            await self._guard.vet(url)
            status, resp_headers, raw, ctype = await self._send(method, url, headers, kwargs, keep)
            if status in REDIRECTS and "Location" in resp_headers:
                next_url = url.join(URL(resp_headers["Location"]))
                if crosses_boundary(url, next_url):
                    headers = strip_credentials(headers, secret_headers)
                url = next_url
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, kwargs = "GET", {}
                continue
            if 200 <= status < 300:
                output = {"status": status, "body": _body_output(raw[: MAX_BODY_KEEP + 1], ctype)}
                if mapping:
                    output["data"] = mapped(raw, mapping)
                return output
            raise_for_status("http_request target", status, raw[:200].decode("utf-8", "replace"), resp_headers)
        raise PermanentError(f"http_request: more than {self._max_redirects} redirects")

    async def _send(
        self, method: str, url: URL, headers: dict[str, str], kwargs: dict[str, Any], keep: int = MAX_BODY_KEEP
    ) -> tuple[int, dict[str, str], bytes, str]:
        span = trace.get_current_span()  # the runner's CLIENT span (the host only: a URL may hold a secret)
        span.set_attribute("http.request.method", method)
        if url.host:
            span.set_attribute("server.address", url.host)
        try:
            async with self._session.request(method, url, headers=headers, allow_redirects=False, **kwargs) as resp:
                raw = await _read_up_to(resp.content, keep + 1)
                return resp.status, dict(resp.headers), raw, resp.content_type
        except EgressRefused:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise network_error("http_request target", exc) from exc
