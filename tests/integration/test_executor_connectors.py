"""Acceptance 2: each connector against its fake's realistic success and failure answers."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from deploy.local.infra import free_port
from libs.common.http.client_ip import parse_networks
from services.executor.connectors import ActionCall, ClientSessions
from services.executor.connectors.configs import (
    DiscordMessage,
    HttpRequest,
    OpenWeatherQuery,
    RenderedConfig,
    SlackMessage,
)
from services.executor.connectors.discord import DiscordConnector
from services.executor.connectors.http_request import HttpRequestConnector
from services.executor.connectors.openweather import OpenWeatherConnector
from services.executor.connectors.slack import SlackConnector
from services.executor.connectors.ssrf import EgressGuard
from services.executor.errors import PermanentError, TransientError
from tests.helpers.fakes import Answer, FakeSink, always, openweather_ok

Config = TypeVar("Config", bound=RenderedConfig)
E = TypeVar("E", bound=Exception)


def call(config: Config, secret: dict[str, Any] | None = None, event_id: str = "e-1") -> ActionCall[Config]:
    return ActionCall(event_id=event_id, tenant_id="t", config=config, secret=secret or {})


async def refusal(
    sink: FakeSink, answer: Answer, send: Callable[[], Awaitable[Any]], error: type[E], match: str | None = None
) -> E:
    """What ``send()`` raises once ``sink`` gives ``answer`` (its message matching ``match``)."""
    sink.behaviour = always(answer)
    with pytest.raises(error, match=match) as exc:
        await send()
    return exc.value


async def test_slack_success_and_failures(sessions: ClientSessions, sink: FakeSink) -> None:
    slack = SlackConnector(sessions, hosts=["127.0.0.1"], allow_http=True)
    hi = functools.partial(slack, call(SlackMessage(text="hi"), {"webhook_url": f"{sink.url}/services/T/B/X"}))
    out = await hi()
    assert out["delivered"] is True and sink.requests[0].json() == {"text": "hi"}

    await refusal(sink, Answer(400, "invalid_payload"), hi, PermanentError, "400")
    await refusal(sink, Answer(404, "no_service"), hi, PermanentError, "no_service")
    limited = Answer(429, "rate_limited", {"Retry-After": "7"})
    assert (await refusal(sink, limited, hi, TransientError)).retry_after == 7
    await refusal(sink, Answer(503, "service unavailable"), hi, TransientError)


async def test_slack_refuses_webhook_urls_off_its_hosts(sessions: ClientSessions, sink: FakeSink) -> None:
    slack = SlackConnector(sessions, hosts=["hooks.slack.com"], allow_http=False)
    with pytest.raises(PermanentError, match="https"):
        await slack(call(SlackMessage(text="x"), {"webhook_url": f"{sink.url}/services/T/B/X"}))
    with pytest.raises(PermanentError, match="allowed slack host"):
        await slack(call(SlackMessage(text="x"), {"webhook_url": "https://evil.example/services/T/B/X"}))
    with pytest.raises(PermanentError, match="no webhook_url"):
        await slack(call(SlackMessage(text="x"), {}))
    assert sink.calls == 0


async def test_discord_success_and_429_retry_after(sessions: ClientSessions, sink: FakeSink) -> None:
    discord = DiscordConnector(sessions, hosts=["127.0.0.1"], allow_http=True)
    yo = functools.partial(
        discord, call(DiscordMessage(content="yo"), {"webhook_url": f"{sink.url}/api/webhooks/1/abc"})
    )
    sink.behaviour = always(Answer(204, ""))
    out = await yo()
    assert out["status"] == 204 and sink.requests[0].json() == {"content": "yo"}

    limited = {"message": "You are being rate limited.", "retry_after": 0.75, "global": False}
    assert (await refusal(sink, Answer(429, json.dumps(limited)), yo, TransientError)).retry_after == 0.75
    unknown = Answer(404, json.dumps({"message": "Unknown Webhook", "code": 10015}))
    await refusal(sink, unknown, yo, PermanentError, "Unknown Webhook")
    await refusal(sink, Answer(502, "bad gateway"), yo, TransientError)


async def test_openweather_summary_and_errors(sessions: ClientSessions, sink: FakeSink) -> None:
    ow = OpenWeatherConnector(sessions, base_url=sink.url)
    sink.behaviour = always(openweather_ok("Paris"))
    out = await ow(call(OpenWeatherQuery(city="Paris", units="metric"), {"api_key": "k-123"}))
    assert out == {
        "city": "Paris",
        "country": "FR",
        "description": "broken clouds",
        "temp": 12.5,
        "feels_like": 11.0,
        "humidity": 80,
        "wind_speed": 4.1,
        "units": "metric",
    }
    req = sink.requests[0]
    assert req.path == "/data/2.5/weather"
    assert req.query == {"q": "Paris", "appid": "k-123", "units": "metric"}

    paris = functools.partial(ow, call(OpenWeatherQuery(city="Paris"), {"api_key": "k"}))
    for status, cod, message, error, says in [
        (401, 401, "Invalid API key.", PermanentError, "401"),
        (404, "404", "city not found", PermanentError, "city not found"),
        (429, 429, "limit", TransientError, None),
    ]:
        await refusal(sink, Answer(status, json.dumps({"cod": cod, "message": message})), paris, error, says)
    with pytest.raises(PermanentError, match="api_key"):
        await ow(call(OpenWeatherQuery(city="Paris"), {}))


async def test_http_request_sends_idempotency_key_headers_and_body(sessions: ClientSessions, sink: FakeSink) -> None:
    guard = EgressGuard(parse_networks("127.0.0.1/32"))
    http = HttpRequestConnector(sessions, guard, max_redirects=3)
    sink.behaviour = always(Answer(201, json.dumps({"id": 9})))
    out = await http(
        call(
            HttpRequest(method="POST", url=f"{sink.url}/orders", headers={"X-A": "1"}, body={"order": "A-1"}),
            {"headers": {"Authorization": "Bearer s3cr3t-token"}},
            event_id="ev-42",
        )
    )
    assert out == {"status": 201, "body": {"id": 9}}
    req = sink.requests[0]
    assert req.headers["Idempotency-Key"] == "ev-42"
    assert req.headers["X-A"] == "1" and req.headers["Authorization"] == "Bearer s3cr3t-token"
    assert req.json() == {"order": "A-1"}

    get = functools.partial(http, call(HttpRequest(method="GET", url=f"{sink.url}/x")))
    await refusal(sink, Answer(408, "timeout"), get, TransientError)
    assert (await refusal(sink, Answer(429, "slow down", {"Retry-After": "3"}), get, TransientError)).retry_after == 3
    await refusal(sink, Answer(422, "bad"), get, PermanentError, "422")


async def test_connection_refused_is_transient(sessions: ClientSessions) -> None:
    slack = SlackConnector(sessions, hosts=["127.0.0.1"], allow_http=True)
    with pytest.raises(TransientError, match="unreachable"):
        await slack(call(SlackMessage(text="x"), {"webhook_url": f"http://127.0.0.1:{free_port()}/services/T/B/X"}))
