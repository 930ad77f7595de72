"""Bodies of ``/api/keys`` (auth): create, list and revoke scoped API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from libs.common.auth.api_keys import Scope
from libs.common.models.auth import DisplayName


class ApiKeyCreate(BaseModel):
    """``POST /api/keys``: a name to know it by, and what it may do."""

    model_config = ConfigDict(extra="forbid")
    name: DisplayName
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope), json_schema_extra={"uniqueItems": True})

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        if len(set(value)) != len(value):
            raise ValueError("a scope is listed twice")
        return value


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart; the key is never shown again.")
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None = Field(default=None, description="Last accepted use (to the minute).")
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key, shown this once: `Authorization: Bearer ipk_...`.")
