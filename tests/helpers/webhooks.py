"""A webhook sender's headers, signed as the Standard Webhooks scheme asks (what a real sender sends)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def signed(secret: str, body: str, *, msg_id: str | None = None, at: datetime | None = None) -> dict[str, str]:
    """``webhook-id`` (a new ``msg_…`` unless given), ``webhook-timestamp`` (now unless ``at``), the signature
    of ``body`` with ``secret``, and a JSON content type."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "Content-Type": "application/json",
    }
