"""Which scheme authenticates a webhook, and the dedup key it yields.

The workflow's trigger says (``verify``): Standard Webhooks (default; the
``webhook-id`` is the dedup key), a sender's own scheme (its delivery id, or the
hash of the body when it sends none, so a redelivery is a duplicate), or
``none`` (no check: the ``Idempotency-Key`` header or nothing).
"""

from __future__ import annotations

from collections.abc import Mapping

from services.gateway.hooks import senders
from services.gateway.hooks.cache import WebhookTarget
from services.gateway.hooks.signature import SignatureError, verify


def authenticate(
    target: WebhookTarget, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: int
) -> str | None:
    """The sender's dedup key (``None``: the caller falls back); :class:`SignatureError` if not authentic."""
    keys = target.keys(now)
    scheme = target.verify
    delivery: str | None
    if scheme == "standard-webhooks":
        webhook_id = headers.get("webhook-id")
        verify(
            keys,
            webhook_id,
            headers.get("webhook-timestamp"),
            headers.get("webhook-signature"),
            body,
            now=now,
            tolerance=tolerance,
        )
        return webhook_id
    if scheme == "none":
        return None
    if scheme == "github":
        delivery = senders.github(headers, body, keys)
    elif scheme == "stripe":
        delivery = senders.stripe(headers, body, keys, now=now, tolerance=tolerance)
    elif scheme == "shopify":
        delivery = senders.shopify(headers, body, keys)
    elif scheme == "slack":
        delivery = senders.slack(headers, body, keys, now=now, tolerance=tolerance)
    elif scheme == "hmac-sha256":
        senders.hmac_sha256(headers, body, keys, target.hmac or senders.HmacOptions())
        delivery = None
    else:
        raise SignatureError(f"unknown verification scheme {scheme!r}")
    return delivery or senders.body_key(body)
