"""Bodies of the auth API (``/api/auth/*``, ``/api/credentials``, the JWKS), validated strictly at the edge.

Auth validates requests and builds responses with these models; the
gateway, which forwards those routes, generates their part of its OpenAPI
document from them.  Where a rule lives in a validator, the JSON Schema
states it too (``json_schema_extra``: the email and name patterns, the
secret each credential type takes), so the document says what auth accepts.
Lengths that are auth settings (passwords, the credentials page) are
documented with the settings' defaults, which are defined here.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError

from libs.common.models.credentials import CredentialType
from libs.common.models.schema import never_null

# Python's \s spelled out (JSON Schema regexes read \s differently), and with the control characters.
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_BLANK = rf"\x00-\x1f\x7f{_SPACE}"
EMAIL_RE = re.compile(rf"^[^@{_BLANK}]{{1,64}}@[^@{_BLANK}]+\.[^@{_BLANK}]+$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
# A name holds no control character and, once stripped, is not empty.
NAME_PATTERN = rf"^[^\x00-\x1f\x7f]*[^{_BLANK}][^\x00-\x1f\x7f]*$"
WEBHOOK_URL_PATTERN = rf"^https?://[^/{_SPACE}]+"

# Defaults of auth's settings, stated by the OpenAPI document.
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024
CREDENTIALS_PAGE_DEFAULT = 50
CREDENTIALS_PAGE_MAX = 100

Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=254),
    Field(json_schema_extra={"pattern": EMAIL_RE.pattern}),
]


# --- requests -----------------------------------------------------------------------------------


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


class Registration(Credentials):
    """``POST /api/auth/register``: the password is ``IPAAS_AUTH_PASSWORD_MIN/MAX_LENGTH`` characters long."""

    password: Annotated[
        str,
        StringConstraints(max_length=4096),
        Field(json_schema_extra={"minLength": PASSWORD_MIN_LENGTH, "maxLength": PASSWORD_MAX_LENGTH}),
    ]


class Login(Credentials):
    """``POST /api/auth/login``: any wrong email or password is the same 401."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @classmethod
    def edit_schema(cls, target: dict[str, Any]) -> None:
        """What the document adds to the generated schema (in ``CredentialCreate``'s branches too)."""


def _http_url(value: str) -> str:
    if not re.match(WEBHOOK_URL_PATTERN, value):
        raise ValueError("webhook_url must be an http(s) URL")
    return value


WebhookUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048),
    Field(json_schema_extra={"pattern": WEBHOOK_URL_PATTERN}),
    AfterValidator(_http_url),
]


class WebhookSecret(_Strict):
    """The secret of ``discord`` credentials."""

    webhook_url: WebhookUrl


# A Slack token: ``xoxb-`` (bot), ``xoxp-`` (user) and the like; the shape log redaction knows.
SLACK_TOKEN_PATTERN = r"^xox[a-z]-[A-Za-z0-9-]{10,500}$"  # noqa: S105 - a shape, not a secret


class SlackSecret(_Strict):
    """The secret of ``slack`` credentials: an incoming webhook's ``webhook_url``, or a ``bot_token``.

    Exactly one of the two. The webhook posts to the channel it was made for; the bot token
    posts through the Web API (``chat.postMessage``) to the action's ``channel``, and can reply
    in a thread.
    """

    webhook_url: WebhookUrl | None = None
    bot_token: Annotated[str, StringConstraints(pattern=SLACK_TOKEN_PATTERN)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SlackSecret:
        if (self.webhook_url is None) == (self.bot_token is None):
            # Named at a field (not the whole secret), so the 422 says where to look.
            field = "webhook_url" if self.webhook_url is None else "bot_token"
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "one_of", "a slack secret is a webhook_url or a bot_token (exactly one)"
                        ),
                        loc=(field,),
                        input=None,
                    )
                ],
            )
        return self

    @classmethod
    def edit_schema(cls, target: dict[str, Any]) -> None:
        target["oneOf"] = [{"required": ["webhook_url"]}, {"required": ["bot_token"]}]
        never_null(target)  # the one given is a string, never null

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        cls.edit_schema(handler.resolve_ref_schema(schema))
        return schema


class ApiKeySecret(_Strict):
    """The secret of ``openweather`` credentials."""

    api_key: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


HeaderValue = Annotated[str, StringConstraints(max_length=8192), Field(json_schema_extra={"pattern": r"^[^\r\n]*$"})]


class HttpHeadersSecret(_Strict):
    """The secret of ``http`` credentials: headers added to the request."""

    headers: dict[str, HeaderValue] = Field(
        min_length=1, max_length=64, json_schema_extra={"propertyNames": {"pattern": HEADER_NAME_RE.pattern}}
    )

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
    "slack": SlackSecret,
    "discord": WebhookSecret,
    "openweather": ApiKeySecret,
    "http": HttpHeadersSecret,
}


def _printable(value: str) -> str:
    if CONTROL_RE.search(value):
        raise ValueError("name must not contain control characters")
    return value


# A name people give a credential or an API key: 1-200 characters, not blank, no control characters.
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    Field(json_schema_extra={"pattern": NAME_PATTERN}),
    AfterValidator(_printable),
]


class CredentialCreate(BaseModel):
    """``POST /api/credentials``; ``secret`` is checked against the model of ``type`` by the handler."""

    model_config = ConfigDict(extra="forbid")
    name: DisplayName
    type: CredentialType
    # Checked against SECRET_MODELS[type] by the handler, so errors name the right fields.
    secret: dict[str, object]

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The document's schema says which secret each type takes (one branch per secret model)."""
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        by_model: dict[type[_Strict], list[str]] = {}
        for name, model in SECRET_MODELS.items():
            by_model.setdefault(model, []).append(name)
        target["oneOf"] = [
            {"properties": {"type": {"enum": names}, "secret": _secret_schema(model, handler)}}
            for model, names in by_model.items()
        ]
        return schema


def _secret_schema(model: type[_Strict], handler: GetJsonSchemaHandler) -> JsonSchemaValue:
    schema = handler(model.__pydantic_core_schema__)
    model.edit_schema(handler.resolve_ref_schema(schema))
    return schema


# --- responses ----------------------------------------------------------------------------------


class RegisteredOut(BaseModel):
    user_id: uuid.UUID
    tenant_id: uuid.UUID


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")


class RevokedOut(BaseModel):
    revoked: Literal["token", "all"]


class CredentialOut(BaseModel):
    id: uuid.UUID
    name: str
    type: CredentialType
    created_at: datetime


class Jwk(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class Jwks(BaseModel):
    """``GET /.well-known/jwks.json``: the public keys in their validity window (no envelope)."""

    keys: list[Jwk]
