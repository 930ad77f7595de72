"""Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) and a ready curl."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shlex
from collections.abc import Mapping

from ipaas_cli.errors import UsageError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret


def secret_key(secret: str) -> bytes:
    raw = secret.strip()
    if not raw.startswith(SECRET_PREFIX):
        raise UsageError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        return base64.b64decode(raw[len(SECRET_PREFIX) :], validate=True)
    except ValueError as exc:
        raise UsageError("the webhook secret is not valid base64 after 'whsec_'") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "Content-Type": "application/json",
    }


def curl(url: str, sent: Mapping[str, str], body: bytes) -> str:
    """A curl command that sends the same signed request (valid while the timestamp is within tolerance)."""
    parts = ["curl", "-i", "-X", "POST", shlex.quote(url)]
    for name, value in sent.items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    parts += ["--data-binary", shlex.quote(body.decode("utf-8", "replace"))]
    return " ".join(parts)
