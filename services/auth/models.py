"""Request bodies of the auth API, validated strictly at the edge."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")

Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]


class Credentials(BaseModel):
    """Email and password; the password's length limits are checked by the handler (configurable)."""

    model_config = ConfigDict(extra="forbid")
    email: Email
    password: Annotated[str, StringConstraints(max_length=4096)]

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL_RE.match(value):
            raise ValueError("not a valid email address")
        return value.lower()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)



class WebhookSecret(_Strict):
    webhook_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("webhook_url must be an http(s) URL")
        return value


class ApiKeySecret(_Strict):
    api_key: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class HttpHeadersSecret(_Strict):
    headers: dict[str, Annotated[str, StringConstraints(max_length=8192)]] = Field(min_length=1, max_length=64)

    @field_validator("headers")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if not HEADER_NAME_RE.match(name):
                raise ValueError("header names must be HTTP tokens")
            if "\r" in header_value or "\n" in header_value:
                raise ValueError("header values must not contain line breaks")
        return value


SECRET_MODELS: dict[str, type[_Strict]] = {
    "slack": WebhookSecret,
    "discord": WebhookSecret,
    "openweather": ApiKeySecret,
    "http": HttpHeadersSecret,
}

CredentialTypeName = Literal["slack", "discord", "openweather", "http"]


class CredentialCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    type: CredentialTypeName
    # Checked against SECRET_MODELS[type] by the handler, so errors name the right fields.
    secret: dict[str, object]

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if CONTROL_RE.search(value):
            raise ValueError("name must not contain control characters")
        return value
