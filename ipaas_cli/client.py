"""The one door to the HTTP API: requests, the response envelope, and errors mapped to exit codes.

Standard library only (``urllib``), synchronous: a command makes a few calls in turn.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ipaas_cli import __name__ as _package
from ipaas_cli.errors import ApiError, Unavailable

USER_AGENT = f"{_package}/1"
DEFAULT_TIMEOUT = 30.0


@dataclass
class Reply:
    status: int
    data: Any
    meta: dict[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


def _error_of(status: int, raw: bytes, *, feature: str | None) -> ApiError | Unavailable:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code", "http_error")) if isinstance(err, dict) else "http_error"
    message = str(err.get("message", "")) if isinstance(err, dict) else raw.decode("utf-8", "replace")[:200]
    details = err.get("details") if isinstance(err, dict) else None
    if status >= 500:
        return Unavailable(f"the server answered {status}: {message or 'no message'}", status=status)
    if feature is not None and status in (404, 405):
        return ApiError(
            status, "not_supported", f"this server does not offer {feature} (it needs a newer ipaas server)"
        )
    return ApiError(status, code, message or f"HTTP {status}", details)


@dataclass
class Api:
    server: str
    token: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def url(self, path: str) -> str:
        return f"{self.server}{path}"

    def raw(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], *, feature: str | None = None
    ) -> Reply:
        """Send one request; a 2xx comes back as a :class:`Reply`, anything else is raised."""
        if not url.startswith(("http://", "https://")):
            raise Unavailable(f"not an http(s) URL: {url}")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url,
            data=body,
            method=method,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                status, raw, got = resp.status, resp.read(), dict(resp.headers.items())
        except urllib.error.HTTPError as exc:
            raise _error_of(exc.code, exc.read(), feature=feature) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unavailable(f"cannot reach {self.server}: {reason}") from exc
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError as exc:
            raise Unavailable(f"the server sent a body that is not JSON ({status})", status=status) from exc
        if isinstance(parsed, dict) and "success" in parsed:
            meta = parsed.get("meta") or {}
            return Reply(status, parsed.get("data"), meta if isinstance(meta, dict) else {}, got)
        return Reply(status, parsed, {}, got)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        feature: str | None = None,
        auth: bool = True,
    ) -> Reply:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        # Parameters given as None are left out; booleans are written true or false.
        kept = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (query or {}).items() if v is not None}
        url = self.url(path) + ("?" + urllib.parse.urlencode(kept) if kept else "")
        try:
            return self.raw(method, url, data, headers, feature=feature)
        except ApiError as exc:
            if exc.status == 401 and "Authorization" in headers:
                exc.message += "; log in again (`ipaas login`) or check IPAAS_TOKEN"
            raise

    def pages(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        *,
        max_rows: int | None = None,
        feature: str | None = None,
    ) -> Iterator[Any]:
        """Every row of a list, following ``meta.next_cursor`` (at most ``max_rows``)."""
        params = dict(query or {})
        seen = 0
        while True:
            reply = self.call("GET", path, query=params, feature=feature)
            for row in reply.data or []:
                yield row
                seen += 1
                if max_rows is not None and seen >= max_rows:
                    return
            cursor = reply.meta.get("next_cursor")
            if not cursor:
                return
            params["cursor"] = cursor
