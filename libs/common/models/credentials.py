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
    """``ok`` with ``type`` and ``secret``, or not ``ok`` with an ``error`` code.

    Error codes (a plain string, so a requester older than a new code still reads the reply;
    it should treat a code it does not know as transient):

    - ``not_found``: no such credential for this tenant (permanent).
    - ``decrypt_failed``: the stored bytes do not authenticate (tampered, copied from another
      row, or a key id bound to the wrong key) or are malformed (permanent).
    - ``bad_request``: the request did not parse (permanent).
    - ``key_unavailable``: sealed under a key-encryption key this auth replica does not hold
      yet, e.g. during a key rollout (transient: ask again later).
    - ``internal_error``: auth could not answer now, e.g. Postgres unreachable (transient).
    """

    model_config = ConfigDict(extra="forbid")
    ok: bool
    type: CredentialType | None = None
    secret: dict[str, Any] | None = None
    # not_found | decrypt_failed | bad_request | key_unavailable | internal_error
    error: str | None = None
