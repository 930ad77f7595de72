"""Issue 10 item 3: a redirect to another origin never receives the credential's headers."""

from __future__ import annotations

import pytest
from yarl import URL

from libs.common.http.client_ip import parse_networks
from services.executor.connectors import ActionCall, ClientSessions
from services.executor.connectors.configs import HttpRequest
from services.executor.connectors.http_request import HttpRequestConnector
from services.executor.connectors.redirect_headers import crosses_boundary, strip_credentials
from services.executor.connectors.ssrf import EgressGuard
from tests.helpers.fakes import Answer, always, sequence

CREDENTIAL = {"headers": {"Authorization": "Bearer cred-token-1", "X-Custom-Key": "cred-key-2"}}
CREDENTIAL_VALUES = ("Bearer cred-token-1", "cred-key-2", "session=abc", "Basic cHJveHk=")


def _connector(sessions: ClientSessions) -> HttpRequestConnector:
    return HttpRequestConnector(sessions, EgressGuard(parse_networks("127.0.0.0/8")), max_redirects=3)


def _call(url: str, event_id: str = "ev-redirect") -> ActionCall[HttpRequest]:
    config = HttpRequest(
        method="POST",
        url=url,
        body={"n": 1},
        headers={"Cookie": "session=abc", "Proxy-Authorization": "Basic cHJveHk=", "X-Trace": "keep-me"},
    )
    return ActionCall(event_id=event_id, tenant_id="t", config=config, secret=CREDENTIAL)


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
