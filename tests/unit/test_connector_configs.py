"""Connectors take typed configs: each rendered config is validated once, by the runner, into its model.

The models take everything the connectors took before (an empty text, a number where text goes, typed
JSON in a body); one that does not fit fails permanently, naming the field but not its value.  The
connector call is a CLIENT span; its traceparent goes to the target only for the configured types.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, get_args

import pytest
from nats.aio.client import Client as NatsClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import Field

from libs.common.bus import Bus
from libs.common.models.workflows import (
    AnyAction,
    DiscordConfig,
    HttpRequestAction,
    HttpRequestConfig,
    NatsPublishConfig,
    OpenWeatherConfig,
    SlackConfig,
)
from libs.common.settings import NatsSettings
from services.executor.connectors import ActionCall, Connector
from services.executor.connectors.configs import (
    RENDERED_CONFIGS,
    ConfigError,
    DiscordMessage,
    HttpRequest,
    NatsMessage,
    OpenWeatherQuery,
    RenderedConfig,
    SlackMessage,
    validated,
)
from services.executor.credentials import CredentialResolver
from services.executor.errors import PermanentError
from services.executor.runner import ActionRunner
from services.executor.settings import ExecutorSettings


def runner(connectors: dict[str, Connector], **options: Any) -> ActionRunner:
    """A runner of ``connectors`` whose credential resolver is never asked (its bus is not connected)."""
    resolver = CredentialResolver(Bus(NatsClient(), NatsSettings()), timeout_seconds=1.0, cache_seconds=1.0)
    return ActionRunner(connectors, resolver, timeout_seconds=1.0, max_output_bytes=256, **options)


def test_every_action_type_has_a_rendered_config_with_its_definitions_fields() -> None:
    definitions = {}
    for action in get_args(AnyAction):
        (action_type,) = get_args(action.model_fields["type"].annotation)
        definitions[action_type] = action.model_fields["config"].annotation
    assert RENDERED_CONFIGS.keys() == definitions.keys()
    for action_type, model in RENDERED_CONFIGS.items():
        assert set(model.model_fields) == set(definitions[action_type].model_fields), action_type


@pytest.mark.parametrize(
    ("action_type", "definition"),
    [
        (
            "slack_message",
            SlackConfig(text="hi", blocks=[{"type": "divider"}], channel="C1", thread_ts="1.2", reply_broadcast=True),
        ),
        ("discord_message", DiscordConfig(content="yo", embeds=[{"title": "t", "color": 5}])),
        ("openweather", OpenWeatherConfig(city="Paris", units="imperial")),
        (
            "http_request",
            HttpRequestConfig(
                method="PUT",
                url="https://example.com/x",
                headers={"X-A": "1"},
                body={"a": [1, {"b": None}]},
                query={"q": "1"},
                response={"id": "data.id"},
            ),
        ),
        ("http_request", HttpRequestConfig(url="https://example.com/x", form={"name": "Ada"})),
        ("nats_publish", NatsPublishConfig(subject="orders.paid", payload={"id": "A-1"})),
    ],
)
def test_a_definitions_config_comes_through_as_it_is(action_type: str, definition: Any) -> None:
    dumped = definition.model_dump(mode="json")  # what the runner renders (no templates here: as is)
    config = validated(action_type, dumped, "action.config")
    assert isinstance(config, RENDERED_CONFIGS[action_type])
    assert {name: getattr(config, name) for name in dumped} == dumped


def test_what_the_connectors_took_before_is_still_taken() -> None:
    assert SlackMessage.model_validate({"text": ""}).text == ""  # an empty rendered text is sent
    assert SlackMessage.model_validate({}).text == ""
    slack = SlackMessage.model_validate({"text": "x", "thread_ts": 1503435956.5, "channel": 42})
    assert (slack.thread_ts, slack.channel) == ("1503435956.5", "42")  # typed numbers: their text
    typed = {"amount": 142.5, "paid": True, "skus": ["S-1"], "none": None}
    http = HttpRequest.model_validate({"url": "https://x", "headers": {"X-N": 7}, "query": {"n": 3}, "body": typed})
    assert (http.headers, http.query, http.body) == ({"X-N": "7"}, {"n": "3"}, typed)
    assert HttpRequest.model_validate({"url": "https://x", "body": "raw text"}).body == "raw text"
    assert HttpRequest.model_validate({"url": "https://x", "form": {"n": 1.5}}).form == {"n": "1.5"}
    # The defaults the connectors used for a missing key.
    http = HttpRequest()
    assert (http.method, http.url, http.form, http.response) == ("POST", "", None, {})
    assert (OpenWeatherQuery().city, OpenWeatherQuery().units) == ("", "metric")
    assert (NatsMessage().subject, NatsMessage().payload) == ("", None)
    blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": "42 EUR"}], "n": 5814783}]
    assert SlackMessage.model_validate({"text": "x", "blocks": blocks}).blocks == blocks
    embeds = [{"title": "Paid", "color": 5814783, "fields": [{"inline": True}]}]
    assert DiscordMessage.model_validate({"content": "", "embeds": embeds}).embeds == embeds
    assert DiscordMessage.model_validate({"content": ""}).content == ""


def test_a_config_that_does_not_fit_fails_permanently_naming_the_field_not_the_value() -> None:
    with pytest.raises(ConfigError) as exc:
        validated("http_request", {"url": "https://x", "headers": {"X-Id": {"token": "s3cr3t"}}}, "action.config")
    assert isinstance(exc.value, PermanentError)
    assert exc.value.field == "action.config.headers.X-Id"
    assert exc.value.message == "invalid config in action.config.headers.X-Id: Input should be a valid string"
    assert "s3cr3t" not in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        validated("slack_message", {"text": ["a"], "reply_broadcast": "maybe"}, "steps.2.action.config")
    assert exc.value.field == "steps.2.action.config.text"
    assert exc.value.message == (
        "invalid config in steps.2.action.config.text: Input should be a valid string (and 1 more)"
    )
    with pytest.raises(ConfigError, match=r"^invalid config in action\.config\.embeds\.0: Input should be a valid"):
        validated("discord_message", {"embeds": ["not an object"]}, "action.config")


class StricterHttpRequest(HttpRequest):
    """A model stricter than the rendered config: stands for one a rendered config does not fit."""

    headers: dict[str, Annotated[str, Field(pattern=r"^\d+$")]] = Field(default_factory=dict)


async def test_the_runner_validates_the_rendered_config_into_the_connectors_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def not_called(call: ActionCall[RenderedConfig]) -> dict[str, Any]:
        raise AssertionError("preparing a call does not call the connector")

    prepares = runner({"http_request": not_called})
    action = HttpRequestAction.model_validate(
        {
            "type": "http_request",
            "config": {
                "url": "https://x/{{ payload.id }}",
                "headers": {"X-Count": "{{ payload.n }}"},
                "body": "{{ payload.n }}",
            },
        }
    )

    async def prepare(payload: dict[str, Any], where: str = "action.config") -> Any:
        return await prepares.prepare_action(
            action, tenant_id=uuid.uuid4(), key="k", payload=payload, event={}, where=where
        )

    call = await prepare({"id": "A-1", "n": 3})
    assert isinstance(call.config, HttpRequest)
    assert (call.config.url, call.config.headers["X-Count"], call.config.body) == ("https://x/A-1", "3", 3)

    monkeypatch.setitem(RENDERED_CONFIGS, "http_request", StricterHttpRequest)
    assert isinstance((await prepare({"id": "A-1", "n": 3})).config, StricterHttpRequest)
    with pytest.raises(ConfigError) as exc:
        await prepare({"id": "A-1", "n": "many"}, where="steps.1.action.config")
    assert exc.value.field == "steps.1.action.config.headers.X-Count"
    assert exc.value.message.startswith("invalid config in steps.1.action.config.headers.X-Count: String should match")
    assert "many" not in exc.value.message


def test_the_default_propagates_to_http_request_only() -> None:
    assert ExecutorSettings().propagating_connectors() == frozenset({"http_request"})


async def test_only_configured_types_send_the_client_spans_traceparent(spans: InMemorySpanExporter) -> None:
    seen: dict[str, dict[str, str]] = {}

    def connector(name: str) -> Any:
        async def call(c: ActionCall[RenderedConfig]) -> dict[str, Any]:
            seen[name] = dict(c.trace_headers)
            return {"status": 200}

        return call

    names = ("http_request", "slack_message")
    calls = runner({name: connector(name) for name in names}, propagate_to=frozenset({"http_request"}))
    call = ActionCall(event_id="e1", tenant_id="t1", config=HttpRequest(url="https://example.com/"))
    spans.clear()
    await calls.call("http_request", call)
    await calls.call("slack_message", call)
    assert seen["slack_message"] == {}
    finished = {s.name: s for s in spans.get_finished_spans()}
    client = finished["connector http_request"]
    assert client.kind is SpanKind.CLIENT and client.context is not None
    assert dict(client.attributes or {})["http.response.status_code"] == 200
    _, trace_id, parent_id, _ = seen["http_request"]["traceparent"].split("-")
    assert (trace_id, parent_id) == (format(client.context.trace_id, "032x"), format(client.context.span_id, "016x"))
    assert "baggage" not in seen["http_request"]
