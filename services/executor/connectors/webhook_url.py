"""Slack and Discord webhook URLs come from credentials: only their real hosts are allowed."""

from __future__ import annotations

from typing import Any

from yarl import URL

from services.executor.errors import PermanentError


def checked_webhook_url(secret: dict[str, Any], *, service: str, hosts: list[str], allow_http: bool) -> URL:
    raw = secret.get("webhook_url")
    if not isinstance(raw, str) or not raw:
        raise PermanentError(f"{service} credential has no webhook_url")
    try:
        url = URL(raw)
    except (ValueError, TypeError) as exc:
        raise PermanentError(f"{service} webhook_url is not a URL") from exc
    allowed_schemes = ("https", "http") if allow_http else ("https",)
    if url.scheme not in allowed_schemes:
        raise PermanentError(f"{service} webhook_url must use https")
    if (url.host or "").lower() not in hosts:
        raise PermanentError(f"{service} webhook_url host is not an allowed {service} host")
    return url
