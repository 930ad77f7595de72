"""Credential resolution over NATS request/reply (executor -> auth).

The executor sends :class:`CredentialRequest` to :data:`RESOLVE_SUBJECT`;
auth answers :class:`CredentialReply`.  Only the executor's NATS identity may
publish on ``svc.auth.>`` and only auth may subscribe to it (see the NATS
authorization in deploy/), so the secret never crosses HTTP.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

RESOLVE_SUBJECT = "svc.auth.credentials.resolve"

CredentialType = Literal["slack", "discord", "openweather", "http"]


class CredentialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: uuid.UUID
    credential_id: uuid.UUID


class CredentialReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ok: bool
    type: CredentialType | None = None
    secret: dict[str, Any] | None = None
    # not_found | decrypt_failed | bad_request | internal_error
    error: str | None = None
