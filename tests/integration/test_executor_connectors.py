"""Acceptance 2: each connector against its fake's realistic success and failure answers.

``slack_message`` with a bot token posts with ``chat.postMessage`` to a fake Slack Web API that answers as
Slack does: HTTP 200 with ``{"ok": true, "channel", "ts"}``, or HTTP 200 with ``{"ok": false, "error"}``
(and HTTP 429 with ``Retry-After`` for some rate limits).  The last Slack test runs the executor against it.

Issue 10 item 3: a redirect to another origin never receives the credential's headers.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from yarl import URL

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
from services.executor.connectors.redirect_headers import crosses_boundary, strip_credentials
from services.executor.connectors.slack import SlackConnector
from services.executor.connectors.ssrf import EgressGuard
from services.executor.errors import PermanentError, TransientError
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import (
    Answer,
    FakeSink,
    Seen,
    always,
    definition,
    final_row,
    openweather_ok,
    publish_event,
    sequence,
)

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
    http = _connector(sessions)
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


TOKEN = "xoxb-1234567890-abcdefghijkl-planted"
POSTED = {"ok": True, "channel": "C024BE91L", "ts": "1503435956.000247", "message": {"text": "hi"}}


def slack_ok(ts: str = "1503435956.000247") -> Answer:
    return Answer(200, json.dumps({**POSTED, "ts": ts}))


def slack_error(code: str, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps({"ok": False, "error": code}), headers or {})


@pytest.fixture
def fake_slack(sink: FakeSink) -> FakeSink:
    sink.behaviour = always(slack_ok())
    return sink


def connector(sessions: ClientSessions, fake: FakeSink) -> SlackConnector:
    return SlackConnector(sessions, hosts=["127.0.0.1"], allow_http=True, api_url=fake.url)


def bot_call(
    config: SlackMessage, secret: dict[str, Any] | None = None, event_id: str = "e-1"
) -> ActionCall[SlackMessage]:
    return call(config, secret or {"bot_token": TOKEN}, event_id)


async def test_post_message_with_blocks_in_a_thread(sessions, fake_slack):
    slack = connector(sessions, fake_slack)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*42*"}}]
    thread = "1503435956.000100"
    message = SlackMessage(text="hi", channel="C024BE91L", blocks=blocks, thread_ts=thread, reply_broadcast=True)
    out = await slack(bot_call(message, event_id="ev-9"))
    assert out == {
        "delivered": True,
        "status": 200,
        "channel": "C024BE91L",
        "ts": "1503435956.000247",
        "chars": 2,
        "thread_ts": "1503435956.000100",
    }
    (seen,) = fake_slack.requests
    assert (seen.method, seen.path) == ("POST", "/api/chat.postMessage")
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Idempotency-Key"] == "ev-9"
    assert seen.headers["Content-Type"].startswith("application/json")
    assert seen.json() == {
        "channel": "C024BE91L",
        "text": "hi",
        "blocks": blocks,
        "thread_ts": "1503435956.000100",
        "reply_broadcast": True,
    }


async def test_a_typed_thread_ts_is_sent_as_slacks_string(sessions, fake_slack):
    # As the runner validates a rendered config whose thread_ts a typed value made a number.
    rendered = {"text": "x", "channel": "#general", "thread_ts": 1503435956.5}
    await connector(sessions, fake_slack)(bot_call(SlackMessage.model_validate(rendered)))
    assert fake_slack.requests[0].json() == {"channel": "#general", "text": "x", "thread_ts": "1503435956.5"}


async def test_ok_false_is_a_failed_try(sessions: ClientSessions, fake_slack: FakeSink) -> None:
    post = functools.partial(connector(sessions, fake_slack), bot_call(SlackMessage(text="hi", channel="C1")))
    for code in ("invalid_auth", "channel_not_found", "not_in_channel", "invalid_blocks", "something_new"):
        assert TOKEN not in str(await refusal(fake_slack, slack_error(code), post, PermanentError, code))
    # A careless fake echoing the token in its error: not a Slack code, so not quoted.
    careless = slack_error(f"invalid_auth for Bearer {TOKEN}")
    assert TOKEN not in str(await refusal(fake_slack, careless, post, PermanentError, "unreadable error code"))
    # Answers worth another try: what the error says, and what it carries.
    transient: list[tuple[Answer, str | None, dict[str, Any]]] = [
        (slack_error("rate_limited", headers={"Retry-After": "30"}), "rate_limited", {"retry_after": 30}),
        (
            slack_error("ratelimited", status=429, headers={"Retry-After": "4"}),
            None,
            {"retry_after": 4, "http_status": 429},
        ),
        (slack_error("internal_error"), "internal_error", {}),
        (Answer(503, "upstream down"), "503", {}),
        (Answer(200, "<html>not json</html>"), "not JSON", {}),
        (Answer(200, json.dumps({"warning": "no ok here"})), "without an ok", {}),
    ]
    for answer, says, carried in transient:
        error = await refusal(fake_slack, answer, post, TransientError, says)
        assert {name: getattr(error, name) for name in carried} == carried, answer


async def test_refusals_before_any_request(sessions, fake_slack):
    slack = connector(sessions, fake_slack)
    with pytest.raises(PermanentError, match="needs config.channel"):
        await slack(bot_call(SlackMessage(text="hi")))
    with pytest.raises(PermanentError, match="empty bot_token"):
        await slack(bot_call(SlackMessage(text="hi", channel="C1"), {"bot_token": ""}))
    # A webhook posts to its own channel: a channel or thread meant for the Web API is not silently dropped.
    webhook = {"webhook_url": f"{fake_slack.url}/services/T/B/X"}
    with pytest.raises(PermanentError, match="channel, thread_ts needs a bot_token"):
        await slack(bot_call(SlackMessage(text="hi", channel="C1", thread_ts="1.2"), webhook))
    assert fake_slack.calls == 0


async def test_a_refused_connection_is_transient_and_names_no_token(sessions: ClientSessions) -> None:
    """To a webhook URL, and to the Web API."""
    slack = SlackConnector(sessions, hosts=["127.0.0.1"], allow_http=True, api_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError, match="unreachable"):
        await slack(call(SlackMessage(text="x"), {"webhook_url": f"http://127.0.0.1:{free_port()}/services/T/B/X"}))
    with pytest.raises(TransientError, match="unreachable") as exc:
        await slack(bot_call(SlackMessage(text="x", channel="C1")))
    assert TOKEN not in str(exc.value)


@pytest.mark.slow
async def test_executor_retries_a_rate_limit_then_posts_the_templated_thread_reply_once(bus, db, executor, sink, creds):
    sink.behaviour = sequence(slack_error("rate_limited", headers={"Retry-After": "1"}), slack_ok("1700000000.000200"))
    tenant = await create_tenant(db)
    cred = creds.add(tenant, "slack", {"bot_token": TOKEN})
    config = {"text": "order {{ payload.order }}", "channel": "C1", "thread_ts": "{{ payload.thread }}"}
    wf = await create_workflow(db, tenant, definition("slack_message", config, cred))
    await executor(IPAAS_EXECUTOR_SLACK_API_URL=sink.url)
    event = await publish_event(bus, tenant, wf, {"order": 42, "thread": "1700000000.000100"})
    row = await final_row(db, event.event_id)
    assert (row["status"], row["attempts"]) == ("succeeded", 2)
    first, second = sink.requests
    assert second.at - first.at >= 0.9  # Retry-After: 1 honoured (the backoff base alone is 0.2 s)
    bodies: list[Seen] = [first, second]
    assert all(r.json() == {"channel": "C1", "text": "order 42", "thread_ts": "1700000000.000100"} for r in bodies)
    assert {r.headers["Idempotency-Key"] for r in bodies} == {str(event.event_id)}
    output = row["output"] if isinstance(row["output"], dict) else json.loads(row["output"])
    assert output["ts"] == "1700000000.000200" and output["channel"] == "C024BE91L"
    tries = await db.fetch(
        "SELECT outcome, error FROM execution_attempts WHERE event_id = $1 ORDER BY id", event.event_id
    )
    assert [t["outcome"] for t in tries] == ["failed", "succeeded"]
    assert "rate_limited" in tries[0]["error"] and TOKEN not in tries[0]["error"]


CREDENTIAL = {"headers": {"Authorization": "Bearer cred-token-1", "X-Custom-Key": "cred-key-2"}}
CREDENTIAL_VALUES = ("Bearer cred-token-1", "cred-key-2", "session=abc", "Basic cHJveHk=")


def _connector(sessions: ClientSessions) -> HttpRequestConnector:
    return HttpRequestConnector(sessions, EgressGuard(parse_networks("127.0.0.0/8")), max_redirects=3)


def _call(url: str) -> ActionCall[HttpRequest]:
    """A POST of ``url`` with the credential and headers of the cookie, proxy and trace kinds."""
    headers = {"Cookie": "session=abc", "Proxy-Authorization": "Basic cHJveHk=", "X-Trace": "keep-me"}
    return call(HttpRequest(method="POST", url=url, body={"n": 1}, headers=headers), CREDENTIAL, "ev-redirect")


def _credential_headers(headers: dict[str, str]) -> list[str]:
    return [name for name, value in headers.items() if value in CREDENTIAL_VALUES]


@pytest.mark.parametrize("other_host", ["127.0.0.2", "127.0.0.1"])  # another host; the same host on another port
async def test_cross_origin_redirect_drops_credential_headers(sessions, sinks, other_host):
    other = await sinks(always(Answer(200, '{"ok": true}')), host=other_host)
    origin = await sinks(always(Answer(307, "", {"Location": f"{other.url}/landing"})), host="127.0.0.1")
    out = await _connector(sessions)(_call(f"{origin.url}/start"))
    assert out == {"status": 200, "body": {"ok": True}}
    first, second = origin.requests[0], other.requests[0]
    # The origin did get the credential: the test would notice if nothing were sent at all.
    assert first.headers["Authorization"] == "Bearer cred-token-1"
    assert first.headers["X-Custom-Key"] == "cred-key-2"
    assert first.headers["Cookie"] == "session=abc"
    assert _credential_headers(second.headers) == []
    assert {"authorization", "x-custom-key", "cookie", "proxy-authorization"}.isdisjoint(
        name.lower() for name in second.headers
    )
    assert second.headers["Idempotency-Key"] == "ev-redirect"
    assert second.headers["X-Trace"] == "keep-me"
    assert second.json() == {"n": 1}  # 307 keeps method and body


async def test_same_origin_redirect_keeps_credential_headers(sessions, sink):
    sink.behaviour = sequence(Answer(302, "", {"Location": "/moved"}), Answer(200, "done"))
    out = await _connector(sessions)(_call(f"{sink.url}/start"))
    assert out == {"status": 200, "body": "done"}
    assert [r.path for r in sink.requests] == ["/start", "/moved"]
    second = sink.requests[1]
    assert second.method == "GET"  # 302 after POST becomes GET
    assert second.headers["Authorization"] == "Bearer cred-token-1"
    assert second.headers["X-Custom-Key"] == "cred-key-2"
    assert second.headers["Idempotency-Key"] == "ev-redirect"


async def test_credentials_stay_dropped_when_the_chain_comes_back(sessions, sinks):
    origin = await sinks(host="127.0.0.1")
    other = await sinks(always(Answer(302, "", {"Location": f"{origin.url}/back"})), host="127.0.0.2")
    origin.behaviour = sequence(Answer(302, "", {"Location": f"{other.url}/away"}), Answer(200, "home"))
    await _connector(sessions)(_call(f"{origin.url}/start"))
    assert [r.path for r in origin.requests] == ["/start", "/back"]
    assert _credential_headers(other.requests[0].headers) == []
    assert _credential_headers(origin.requests[1].headers) == []


@pytest.mark.parametrize(
    ("before", "after", "crosses"),
    [
        ("https://a.example/x", "https://a.example/y", False),
        ("https://a.example/x", "https://a.example:443/y", False),
        ("http://a.example/x", "https://a.example/y", True),
        ("https://a.example/x", "http://a.example/y", True),
        ("https://a.example/x", "https://b.example/y", True),
        ("https://a.example/x", "https://A.EXAMPLE/y", False),
        ("https://a.example/x", "https://a.example:8443/y", True),
    ],
)
def test_crosses_boundary(before, after, crosses):
    assert crosses_boundary(URL(before), URL(after)) is crosses


def test_strip_credentials_is_case_blind():
    headers = {"authorization": "a", "X-CUSTOM-KEY": "k", "COOKIE": "c", "Idempotency-Key": "e", "X-Other": "o"}
    assert strip_credentials(headers, ["X-Custom-Key"]) == {"Idempotency-Key": "e", "X-Other": "o"}


async def test_cookies_set_by_a_target_are_not_replayed(sessions, sink):
    sink.behaviour = always(Answer(200, "ok", {"Set-Cookie": "sid=tenant-a-session; Path=/"}))
    connector = _connector(sessions)
    url = f"http://localhost:{sink.port}/x"  # a name, not an address: a default cookie jar would keep it
    for event_id in ("ev-a", "ev-b"):
        await connector(ActionCall(event_id=event_id, tenant_id=event_id, config=HttpRequest(method="GET", url=url)))
    assert sink.calls == 2
    assert "Cookie" not in sink.requests[1].headers
