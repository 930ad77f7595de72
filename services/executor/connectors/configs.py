"""What each connector receives: its action's config with the templates rendered, as a typed model.

The definition models (``libs.common.models.workflows``: ``SlackConfig``, ``HttpRequestConfig``...) say
what may be saved: template strings, with lengths and patterns. Rendering turns each template into
text, or, under a typed key (``body``, ``payload``, ``blocks``, ``embeds``), into any JSON value.  The
models here say what a connector then gets, field for field the same names as the definition's (a
test holds the two lists together), and they are lax on purpose, so that nothing sent before is
refused now:

- no lengths, patterns or required text: an empty rendered ``text`` is sent as before, and a missing
  field takes the default the connector always used (``""``, ``"POST"``, ``"metric"``);
- a number where text is expected becomes its text (``coerce_numbers_to_str``): a typed ``thread_ts``
  of ``1503435956.5`` is sent as ``"1503435956.5"``, as Slack wants;
- JSON passed through (``body``, ``payload``, the insides of ``blocks`` and ``embeds``) is typed as
  ``JsonValue`` but not walked again: the template engine only ever yields JSON values, and a large
  body would cost a millisecond to check.

:func:`validated` turns a rendered dict into its model once per call (the runner's ``prepare_action``);
a config that does not fit fails the try permanently with a :class:`ConfigError` naming the field
(``action.config.headers.X-Id``).
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SkipValidation, ValidationError

from services.executor.errors import PermanentError

# Passed through as the template engine gave it (see the module's docstring).
Json = SkipValidation[JsonValue]
JsonObject = dict[str, Json]


class RenderedConfig(BaseModel):
    """Base of every connector's rendered config."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)


class SlackMessage(RenderedConfig):
    """``slack_message`` (``SlackConfig``)."""

    text: str = ""
    blocks: list[JsonObject] | None = None
    channel: str | None = None
    thread_ts: str | None = None
    reply_broadcast: bool | None = None


class DiscordMessage(RenderedConfig):
    """``discord_message`` (``DiscordConfig``)."""

    content: str | None = None
    embeds: list[JsonObject] | None = None


class OpenWeatherQuery(RenderedConfig):
    """``openweather`` (``OpenWeatherConfig``)."""

    city: str = ""
    units: str = "metric"


class HttpRequest(RenderedConfig):
    """``http_request`` (``HttpRequestConfig``)."""

    method: str = "POST"
    url: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    body: Json = None
    query: dict[str, str] = Field(default_factory=dict)
    form: dict[str, str] | None = None
    response: dict[str, str] = Field(default_factory=dict)


class NatsMessage(RenderedConfig):
    """``nats_publish`` (``NatsPublishConfig``)."""

    subject: str = ""
    payload: Json = None


# The rendered config of each action type.
RENDERED_CONFIGS: Final[dict[str, type[RenderedConfig]]] = {
    "slack_message": SlackMessage,
    "discord_message": DiscordMessage,
    "openweather": OpenWeatherQuery,
    "http_request": HttpRequest,
    "nats_publish": NatsMessage,
}


class ConfigError(PermanentError):
    """A rendered config its connector cannot take; ``field`` says where (``action.config.headers.X-Id``)."""

    def __init__(self, field: str, reason: str, more: int = 0) -> None:
        self.field = field
        also = f" (and {more} more)" if more else ""
        super().__init__(f"invalid config in {field}: {reason}{also}")


def validated(action_type: str, rendered: dict[str, object], where: str) -> RenderedConfig:
    """``rendered`` as ``action_type``'s model; ``where`` prefixes the field a :class:`ConfigError` names.

    The error never quotes the value: it may hold the event's data.
    """
    try:
        return RENDERED_CONFIGS[action_type].model_validate(rendered)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        first = errors[0]
        field = ".".join([where, *(str(part) for part in first["loc"])])
        raise ConfigError(field, first["msg"], len(errors) - 1) from None
