"""``slack_message`` with a bot token: ``chat.postMessage`` against a fake Slack Web API.

The fake answers as Slack does: HTTP 200 with ``{"ok": true, "channel", "ts"}``,
or HTTP 200 with ``{"ok": false, "error"}`` (and HTTP 429 with ``Retry-After``
for some rate limits).  The last test runs the executor against it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from deploy.local.infra import free_port
from services.executor.connectors import ActionCall, ClientSessions
from services.executor.connectors.configs import SlackMessage
from services.executor.connectors.slack import SlackConnector
from services.executor.errors import PermanentError, TransientError
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import (
    Answer,
    FakeSink,
    Seen,
    always,
    definition,
    final_row,
    publish_event,
    sequence,
)

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


def call(config: SlackMessage, secret: dict[str, Any] | None = None, event_id: str = "e-1") -> ActionCall[SlackMessage]:
    return ActionCall(event_id=event_id, tenant_id="t", config=config, secret=secret or {"bot_token": TOKEN})


async def test_post_message_with_blocks_in_a_thread(sessions, fake_slack):
    slack = connector(sessions, fake_slack)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*42*"}}]
    out = await slack(
        call(
            SlackMessage(
                text="hi",
                channel="C024BE91L",
                blocks=blocks,
                thread_ts="1503435956.000100",
                reply_broadcast=True,
            ),
            event_id="ev-9",
        )
    )
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
    await connector(sessions, fake_slack)(call(SlackMessage.model_validate(rendered)))
    assert fake_slack.requests[0].json() == {"channel": "#general", "text": "x", "thread_ts": "1503435956.5"}


async def test_ok_false_is_a_failed_try(sessions, fake_slack):
    slack = connector(sessions, fake_slack)
    cfg = SlackMessage(text="hi", channel="C1")
    for code in ("invalid_auth", "channel_not_found", "not_in_channel", "invalid_blocks", "something_new"):
        fake_slack.behaviour = always(slack_error(code))
        with pytest.raises(PermanentError, match=code) as perm:
            await slack(call(cfg))
        assert TOKEN not in str(perm.value)
    # A careless fake echoing the token in its error: not a Slack code, so not quoted.
    fake_slack.behaviour = always(slack_error(f"invalid_auth for Bearer {TOKEN}"))
    with pytest.raises(PermanentError, match="unreadable error code") as perm:
        await slack(call(cfg))
    assert TOKEN not in str(perm.value)
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
        fake_slack.behaviour = always(answer)
        with pytest.raises(TransientError, match=says) as exc:
            await slack(call(cfg))
        assert {name: getattr(exc.value, name) for name in carried} == carried, answer


async def test_refusals_before_any_request(sessions, fake_slack):
    slack = connector(sessions, fake_slack)
    with pytest.raises(PermanentError, match="needs config.channel"):
        await slack(call(SlackMessage(text="hi")))
    with pytest.raises(PermanentError, match="empty bot_token"):
        await slack(call(SlackMessage(text="hi", channel="C1"), {"bot_token": ""}))
    # A webhook posts to its own channel: a channel or thread meant for the Web API is not silently dropped.
    webhook = {"webhook_url": f"{fake_slack.url}/services/T/B/X"}
    with pytest.raises(PermanentError, match="channel, thread_ts needs a bot_token"):
        await slack(call(SlackMessage(text="hi", channel="C1", thread_ts="1.2"), webhook))
    assert fake_slack.calls == 0


async def test_unreachable_api_is_transient_and_names_no_token(sessions):
    slack = SlackConnector(sessions, hosts=[], allow_http=True, api_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError, match="unreachable") as exc:
        await slack(call(SlackMessage(text="x", channel="C1")))
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
