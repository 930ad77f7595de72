"""Acceptance 2: each connector against its fake's realistic success and failure answers."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pytest

from libs.common.http.client_ip import parse_networks
from services.executor.connectors import ActionCall
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
from tests.helpers.fakes import Answer, always, openweather_ok

Config = TypeVar("Config", bound=RenderedConfig)


def call(config: Config, secret: dict[str, Any] | None = None, event_id: str = "e-1") -> ActionCall[Config]:
    return ActionCall(event_id=event_id, tenant_id="t", config=config, secret=secret or {})


async def test_slack_success_and_failures(sessions, sink):
    slack = SlackConnector(sessions, hosts=["127.0.0.1"], allow_http=True)
    secret = {"webhook_url": f"{sink.url}/services/T/B/X"}
    out = await slack(call(SlackMessage(text="hi"), secret))
    assert out["delivered"] is True and sink.requests[0].json() == {"text": "hi"}

    sink.behaviour = always(Answer(400, "invalid_payload"))
    with pytest.raises(PermanentError, match="400"):
        await slack(call(SlackMessage(text="hi"), secret))
    sink.behaviour = always(Answer(404, "no_service"))
    with pytest.raises(PermanentError, match="no_service"):
        await slack(call(SlackMessage(text="hi"), secret))
    sink.behaviour = always(Answer(429, "rate_limited", {"Retry-After": "7"}))
    with pytest.raises(TransientError) as exc:
        await slack(call(SlackMessage(text="hi"), secret))
    assert exc.value.retry_after == 7
    sink.behaviour = always(Answer(503, "service unavailable"))
    with pytest.raises(TransientError):
        await slack(call(SlackMessage(text="hi"), secret))


async def test_slack_refuses_webhook_urls_off_its_hosts(sessions, sink):
    slack = SlackConnector(sessions, hosts=["hooks.slack.com"], allow_http=False)
    with pytest.raises(PermanentError, match="https"):
        await slack(call(SlackMessage(text="x"), {"webhook_url": f"{sink.url}/services/T/B/X"}))
    with pytest.raises(PermanentError, match="allowed slack host"):
        await slack(call(SlackMessage(text="x"), {"webhook_url": "https://evil.example/services/T/B/X"}))
    with pytest.raises(PermanentError, match="no webhook_url"):
        await slack(call(SlackMessage(text="x"), {}))
    assert sink.calls == 0


async def test_discord_success_and_429_retry_after(sessions, sink):
    discord = DiscordConnector(sessions, hosts=["127.0.0.1"], allow_http=True)
    secret = {"webhook_url": f"{sink.url}/api/webhooks/1/abc"}
    sink.behaviour = always(Answer(204, ""))
    out = await discord(call(DiscordMessage(content="yo"), secret))
    assert out["status"] == 204 and sink.requests[0].json() == {"content": "yo"}

    sink.behaviour = always(
        Answer(429, json.dumps({"message": "You are being rate limited.", "retry_after": 0.75, "global": False}))
    )
    with pytest.raises(TransientError) as exc:
        await discord(call(DiscordMessage(content="yo"), secret))
    assert exc.value.retry_after == 0.75
    sink.behaviour = always(Answer(404, json.dumps({"message": "Unknown Webhook", "code": 10015})))
    with pytest.raises(PermanentError, match="Unknown Webhook"):
        await discord(call(DiscordMessage(content="yo"), secret))
    sink.behaviour = always(Answer(502, "bad gateway"))
    with pytest.raises(TransientError):
        await discord(call(DiscordMessage(content="yo"), secret))


async def test_openweather_summary_and_errors(sessions, sink):
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

    sink.behaviour = always(Answer(401, json.dumps({"cod": 401, "message": "Invalid API key."})))
    with pytest.raises(PermanentError, match="401"):
        await ow(call(OpenWeatherQuery(city="Paris"), {"api_key": "bad"}))
    sink.behaviour = always(Answer(404, json.dumps({"cod": "404", "message": "city not found"})))
    with pytest.raises(PermanentError, match="city not found"):
        await ow(call(OpenWeatherQuery(city="Nowhere"), {"api_key": "k"}))
    sink.behaviour = always(Answer(429, json.dumps({"cod": 429, "message": "limit"})))
    with pytest.raises(TransientError):
        await ow(call(OpenWeatherQuery(city="Paris"), {"api_key": "k"}))
    with pytest.raises(PermanentError, match="api_key"):
        await ow(call(OpenWeatherQuery(city="Paris"), {}))


async def test_http_request_sends_idempotency_key_headers_and_body(sessions, sink):
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

    sink.behaviour = always(Answer(408, "timeout"))
    with pytest.raises(TransientError):
        await http(call(HttpRequest(method="GET", url=f"{sink.url}/x")))
    sink.behaviour = always(Answer(429, "slow down", {"Retry-After": "3"}))
    with pytest.raises(TransientError) as exc:
        await http(call(HttpRequest(method="GET", url=f"{sink.url}/x")))
    assert exc.value.retry_after == 3
    sink.behaviour = always(Answer(422, "bad"))
    with pytest.raises(PermanentError, match="422"):
        await http(call(HttpRequest(method="GET", url=f"{sink.url}/x")))


async def test_connection_refused_is_transient(sessions):
    from deploy.local.infra import free_port

    slack = SlackConnector(sessions, hosts=["127.0.0.1"], allow_http=True)
    with pytest.raises(TransientError, match="unreachable"):
        await slack(call(SlackMessage(text="x"), {"webhook_url": f"http://127.0.0.1:{free_port()}/services/T/B/X"}))
