"""Standard Webhooks verification (https://www.standardwebhooks.com/).

The signed content is ``<webhook-id>.<webhook-timestamp>.<raw body>``, the MAC
is HMAC-SHA256 with the base64 key after ``whsec_``, and ``webhook-signature``
is a space-separated list of ``v1,<base64 MAC>``.  Any listed signature that
matches any currently valid secret is accepted; comparisons are constant time.
The header limits are those of :class:`libs.common.models.api.WebhookHeaders`,
which the OpenAPI document states.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from libs.common.models.api import WEBHOOK_ID_MAX, WEBHOOK_SIGNATURE_MAX, WEBHOOK_TIMESTAMP_DIGITS

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
SECRET_BYTES = 32


class SignatureError(Exception):
    """The request is not signed as the spec says; the message says why (never the secret)."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not base64") from exc


def verify(
    keys: tuple[bytes, ...],
    msg_id: str | None,
    timestamp: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    now: float,
    tolerance: int,
) -> None:
    """Raise :class:`SignatureError` unless one ``v1`` signature matches one key."""
    if not msg_id or not timestamp or not signature_header:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if len(msg_id) > WEBHOOK_ID_MAX or len(signature_header) > WEBHOOK_SIGNATURE_MAX:
        raise SignatureError("webhook headers are too long")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= WEBHOOK_TIMESTAMP_DIGITS):
        raise SignatureError("webhook-timestamp is not a unix time")
    if abs(now - int(timestamp)) > tolerance:
        raise SignatureError("webhook-timestamp is outside the tolerance")
    candidates: list[bytes] = []
    for part in signature_header.split(" "):
        version, _, value = part.partition(",")
        if version != "v1" or not value:
            continue
        try:
            candidates.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not candidates:
        raise SignatureError("no v1 signature in webhook-signature")
    signed = b"".join((msg_id.encode(), b".", timestamp.encode(), b".", body))
    if not matches(keys, signed, candidates):
        raise SignatureError("no signature matches")


def matches(keys: tuple[bytes, ...], signed: bytes, candidates: list[bytes]) -> bool:
    """Whether one candidate is the HMAC-SHA256 of ``signed`` under one key."""
    matched = False
    for key in keys:
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        for candidate in candidates:
            # No early exit: every comparison runs, each in constant time.
            matched |= hmac.compare_digest(expected, candidate)
    return matched
