"""Issue 10, acceptance "leak scan": planted secrets never come out of the platform.

auth, the gateway and an executor run as processes, each exporting its spans over
OTLP/HTTP to a receiver in this test.  Distinct values are planted in a password,
every kind of credential (Slack, Discord, OpenWeather, HTTP headers), the webhook
secrets and the bearer token, and the targets echo what they receive (headers, path,
query) in their success and error bodies.  The workload has successes, failures that
end in the DLQ, a cross-origin redirect, dry-runs, a manual run, a secret rotation
and a DLQ replay.  Then every log line of every service, every API response, every
message of the DLQ stream, every exported span batch and the tenant's rows in
Postgres are searched for the planted values: none may be there.

The test can fail: it checks that the planted values did reach the targets (and came
back in their answers), that spans arrived from every service, and the response
that hands out a secret by design (the token at login, a webhook secret at creation
and rotation) is the only place it is allowed.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from libs.common.bus import Bus
from tests.e2e.conftest import Platform
from tests.helpers.fakes import Answer, FakeSink, Seen
from tests.helpers.otlp_receiver import OtlpHttpReceiver
from tests.helpers.stack_processes import Api
from tests.helpers.wait import wait_until
from tests.helpers.webhooks import signed

FINAL = ("succeeded", "dead", "skipped")


def _planted() -> dict[str, str]:
    tag = secrets.token_hex(5)
    return {
        "password": f"Pw{tag}horse",
        "slack_ok": f"slk{tag}okay",
        "slack_fail": f"slk{tag}fail",
        "discord": f"dsc{tag}tokn",
        "slack_bot": f"xoxb-{tag}-planted",
        "openweather": f"owm{tag}key",
        "bearer": f"brr{tag}token",
        "api_key": f"hdr{tag}apikey",
    }


def _echo(other_url: str) -> Callable[[Seen, int], Answer]:
    """A careless target: it sends back what it was sent."""

    def answer(seen: Seen, _n: int) -> Answer:
        if seen.path == "/echo-ok":
            return Answer(200, json.dumps({"you_sent": seen.headers}))
        if seen.path == "/echo-fail":
            sent = {k: v for k, v in seen.headers.items() if k in ("Authorization", "X-Api-Key")}
            return Answer(500, f"rejected {json.dumps(sent)} and everything else: {json.dumps(seen.headers)}")
        if seen.path == "/redirect":
            return Answer(307, "", {"Location": f"{other_url}/landing"})
        if seen.path.startswith("/services/"):
            return Answer(404, f"no_service at {seen.path}") if seen.path.endswith("fail") else Answer(200, "ok")
        if seen.path.startswith("/api/webhooks/"):
            return Answer(204, "")
        if seen.path == "/api/chat.postMessage":
            auth = seen.headers.get("Authorization", "")
            if seen.json().get("channel") == "C-fail":
                return Answer(200, json.dumps({"ok": False, "error": f"invalid_auth {auth}"}))
            return Answer(200, json.dumps({"ok": True, "channel": "C-ok", "ts": "1.2", "message": {"auth": auth}}))
        if seen.path == "/data/2.5/weather":
            appid = seen.query.get("appid", "")
            if seen.query.get("q") == "Echo":
                return Answer(
                    200, json.dumps({"name": appid, "main": {"temp": 3}, "weather": [{"description": appid}]})
                )
            return Answer(401, json.dumps({"cod": 401, "message": f"Invalid API key {appid}"}))
        return Answer(404, f"nothing at {seen.path}")

    return answer


def _landing(seen: Seen, _n: int) -> Answer:
    return Answer(200, json.dumps({"landed_with": seen.headers}))


@dataclass
class Response:
    where: str
    text: str
    allowed: frozenset[str]  # needles this response hands out by design


class Recording(Api):
    """A client of the gateway that keeps every answer it got in ``seen``, with what each may hand out."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        super().__init__(http, base)
        self.seen: list[Response] = []

    async def call(self, method: str, path: str, body: Any = None, *, expect: int, allow: tuple[str, ...] = ()) -> Any:
        async with self.http.request(method, f"{self.base}{path}", json=body, headers=self.headers) as r:
            text = await r.text()
        self.seen.append(Response(f"{method} {path} -> {r.status}", text, frozenset(allow)))
        assert r.status == expect, f"{method} {path}: {r.status} {text}"
        return json.loads(text) if text else None

    async def hook(self, workflow_id: str, secret: str, payload: dict[str, Any]) -> str:
        """Send a signed webhook to ``workflow_id``; returns its event id."""
        body = json.dumps(payload)
        async with self.http.post(f"{self.base}/hooks/{workflow_id}", data=body, headers=signed(secret, body)) as r:
            text = await r.text()
        self.seen.append(Response(f"POST /hooks/{workflow_id} -> {r.status}", text, frozenset()))
        assert r.status == 202, text
        event_id: str = json.loads(text)["data"]["event_id"]
        return event_id


def _needles(planted: dict[str, str], token: str, webhook_secrets: list[str]) -> dict[str, str]:
    """Every planted value by name, with the parts that are secret on their own."""
    needles = dict(planted)
    needles["token"] = token
    needles["token_signature"] = token.rsplit(".", 1)[-1]
    for i, secret in enumerate(webhook_secrets):
        needles[f"whsec_{i}"] = secret
        needles[f"whsec_key_{i}"] = secret.removeprefix("whsec_")
    return needles


def _hits(text: str, needles: dict[str, str], allowed: frozenset[str] = frozenset()) -> list[str]:
    return [name for name, value in needles.items() if value in text and name not in allowed]


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_planted_secrets_never_leave(
    platform: Platform, bus: Bus, db: asyncpg.Connection, sinks: Callable[..., Awaitable[FakeSink]]
) -> None:
    planted = _planted()
    other = await sinks(_landing, host="127.0.0.2")
    sink = await sinks(_echo(other.url))
    spans = await OtlpHttpReceiver().start()
    try:
        otel = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{spans.endpoint}/v1/traces",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        executor = {
            **otel,
            "LOG_LEVEL": "DEBUG",
            "IPAAS_EGRESS_ALLOW_CIDRS": "127.0.0.0/8",
            "IPAAS_EXECUTOR_MAX_ATTEMPTS": "2",
            "IPAAS_EXECUTOR_BACKOFF_MAX_SECONDS": "0.3",
            "IPAAS_EXECUTOR_OPENWEATHER_URL": sink.url,
            "IPAAS_EXECUTOR_SLACK_API_URL": sink.url,
        }
        # The platform's own signed-up user is of another tenant: this test's user registers below.
        stack = await platform(common={"LOG_LEVEL": "DEBUG", **otel}, executor=executor)
        processes = {"auth": stack.auth, "gateway": stack.gateway, "executor": stack.executors[0]}
        api = Recording(stack.http, stack.base)

        email = f"leak-{uuid.uuid4().hex[:8]}@example.com"
        user = {"email": email, "password": planted["password"]}
        await api.call("POST", "/api/auth/register", user, expect=201)
        login = await api.call("POST", "/api/auth/login", user, expect=200, allow=("token", "token_signature"))
        api.token = login["data"]["access_token"]

        async def credential(ctype: str, secret: dict[str, Any]) -> str:
            return str((await api.credential(f"{ctype} {uuid.uuid4().hex[:6]}", ctype, secret))["id"])

        creds = {
            "http": await credential(
                "http", {"headers": {"Authorization": f"Bearer {planted['bearer']}", "X-Api-Key": planted["api_key"]}}
            ),
            "slack_ok": await credential("slack", {"webhook_url": f"{sink.url}/services/T0/B0/{planted['slack_ok']}"}),
            "slack_fail": await credential(
                "slack", {"webhook_url": f"{sink.url}/services/T1/B1/{planted['slack_fail']}"}
            ),
            "discord": await credential("discord", {"webhook_url": f"{sink.url}/api/webhooks/42/{planted['discord']}"}),
            "openweather": await credential("openweather", {"api_key": planted["openweather"]}),
            "slack_bot": await credential("slack", {"bot_token": planted["slack_bot"]}),
        }

        def act(kind: str, credential: str, **config: Any) -> dict[str, Any]:
            """An action of ``kind`` with ``config``, using the credential stored as ``creds[credential]``."""
            return {"type": kind, "credential_id": creds[credential], "config": config}

        def http_action(path: str) -> dict[str, Any]:
            return act("http_request", "http", method="POST", url=f"{sink.url}{path}", body={"n": "{{ payload.n }}"})

        actions: dict[str, dict[str, Any]] = {
            "http_ok": http_action("/echo-ok"),
            "http_fail": http_action("/echo-fail"),
            "http_redirect": http_action("/redirect"),
            "slack_ok": act("slack_message", "slack_ok", text="hi"),
            "slack_fail": act("slack_message", "slack_fail", text="hi"),
            "discord": act("discord_message", "discord", content="yo"),
            "slack_bot_ok": act("slack_message", "slack_bot", text="hi", channel="C-ok", thread_ts="1.{{ payload.n }}"),
            "slack_bot_fail": act("slack_message", "slack_bot", text="hi", channel="C-fail"),
            "ow_ok": act("openweather", "openweather", city="Echo"),
            "ow_fail": act("openweather", "openweather", city="Paris"),
        }
        workflows: dict[str, tuple[str, str]] = {}
        webhook_secrets: list[str] = []
        for name, action in actions.items():
            n = len(webhook_secrets)  # the creation hands out this workflow's secret, and only that
            made = await api.call(
                "POST",
                "/api/workflows",
                {"name": name, "trigger": {"type": "webhook"}, "action": action},
                expect=201,
                allow=(f"whsec_{n}", f"whsec_key_{n}"),
            )
            workflows[name] = (made["data"]["id"], made["data"]["webhook"]["secret"])
            webhook_secrets.append(made["data"]["webhook"]["secret"])

        events = {
            name: await api.hook(wid, secret, {"n": i}) for i, (name, (wid, secret)) in enumerate(workflows.items())
        }
        # A rotation: the old secret still works inside its overlap, the new one too.
        wid, old_secret = workflows["http_ok"]
        rotated = await api.call(
            "POST",
            f"/api/workflows/{wid}/webhook-secret",
            expect=200,
            allow=(f"whsec_{len(webhook_secrets)}", f"whsec_key_{len(webhook_secrets)}"),
        )
        webhook_secrets.append(rotated["data"]["webhook"]["secret"])
        events["http_ok_old_secret"] = await api.hook(wid, old_secret, {"n": 100})
        events["http_ok_new_secret"] = await api.hook(wid, webhook_secrets[-1], {"n": 101})
        manual = await api.call(
            "POST", f"/api/workflows/{workflows['discord'][0]}/run", {"payload": {"n": 7}}, expect=202
        )
        events["manual"] = manual["data"]["event_id"]
        for name in ("http_ok", "http_fail", "ow_ok"):
            await api.call(
                "POST",
                "/api/workflows/dry-run",
                {
                    "workflow": {"name": "dry", "trigger": {"type": "webhook"}, "action": actions[name]},
                    "payload": {"n": 9},
                },
                expect=200,
            )

        async def all_final() -> bool:
            page = await api.call("GET", "/api/executions?limit=200", expect=200)
            final = {e["event_id"] for e in page["data"] if e["status"] in FINAL}
            return set(events.values()) <= final

        await wait_until(all_final, timeout=60, interval=0.5, message="every event final")
        page = (await api.call("GET", "/api/executions?limit=200", expect=200))["data"]
        by_event = {e["event_id"]: e for e in page}
        # The four *_fail targets refuse for good: their events are dead, and every other one succeeded.
        assert {n: by_event[e]["status"] for n, e in events.items()} == {
            n: "dead" if n.endswith("_fail") else "succeeded" for n in events
        }
        assert len(events) == 13
        for execution in page:
            await api.call("GET", f"/api/executions/{execution['id']}", expect=200)

        # The DLQ, and a replay of one dead letter (the target still fails: dead again, after the workflow's
        # whole retry policy once more, as a replay counts its attempts from zero).
        letters = (await api.call("GET", "/api/dlq", expect=200))["data"]
        assert len(letters) == 4
        dead = events["http_fail"]
        await api.call("POST", f"/api/dlq/{dead}/replay", expect=202)

        async def replayed_dead() -> bool:
            detail = await api.call("GET", f"/api/executions/{by_event[dead]['id']}", expect=200)
            return bool(detail["data"]["status"] == "dead" and len(detail["data"]["attempt_history"]) > 2)

        await wait_until(replayed_dead, timeout=30, interval=0.5, message="the replay to end dead again")
        await api.call("GET", "/api/dlq?include_replayed=true", expect=200)
        await api.call("GET", "/api/credentials", expect=200)
        await api.call("GET", "/api/workflows", expect=200)
        for wid, _ in workflows.values():
            await api.call("GET", f"/api/workflows/{wid}", expect=200)
            await api.call("GET", f"/api/workflows/{wid}/versions", expect=200)

        # The planted values did reach the targets, and the targets sent them back.
        received = json.dumps([[r.path, r.query, r.headers] for r in sink.requests])
        assert set(_hits(received, planted)) == set(planted) - {"password"}
        assert other.calls >= 1
        landed = other.requests[0].headers
        assert "Authorization" not in landed and "X-Api-Key" not in landed  # the redirect dropped them

        needles = _needles(planted, api.token, webhook_secrets)
        tenant_id = await db.fetchval(
            "SELECT tenant_id FROM workflows WHERE id = $1", uuid.UUID(workflows["http_ok"][0])
        )

        # Spans from every service, flushed (the batch exporter sends every 200 ms).
        async def spans_from_all() -> bool:
            joined = b"".join(spans.bodies)
            return (
                all(name.encode() in joined for name in ("gateway", "executor", "auth")) and b"process EVENTS" in joined
            )

        await wait_until(spans_from_all, timeout=20, interval=0.25, message="spans from every service")
        settled = time.monotonic()
        count = len(spans.bodies)

        async def quiet() -> bool:
            nonlocal settled, count
            if len(spans.bodies) != count:
                settled, count = time.monotonic(), len(spans.bodies)
            return time.monotonic() - settled > 1.0

        await wait_until(quiet, timeout=20, interval=0.2, message="span exports to settle")
        # The exports are read as they are (their attributes name the tenant's event subjects).
        assert str(tenant_id).encode() in b"".join(spans.bodies)

        async def tenant_dlq() -> list[str]:
            found: list[str] = []
            info = await bus.js.stream_info("DLQ")
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await bus.js.get_msg("DLQ", seq)
                if str(tenant_id) in (msg.subject or ""):
                    found.append((msg.data or b"").decode("utf-8", "replace"))
            return found if len(found) >= 5 else []

        # Four dead letters, and the replayed one's second (published just after its row turned dead).
        dlq_messages = await wait_until(tenant_dlq, timeout=10, interval=0.25, message="five dead letters in DLQ")

        rows: list[str] = []
        of_tenant = "tenant_id = $1"
        for table, where in (
            ("executions", of_tenant),
            ("dead_letters", of_tenant),
            ("workflows", of_tenant),
            ("webhook_secrets", of_tenant),
            ("credentials", of_tenant),
            ("users", of_tenant),
            ("execution_attempts", "event_id IN (SELECT event_id FROM executions WHERE tenant_id = $1)"),
            ("workflow_versions", "workflow_id IN (SELECT id FROM workflows WHERE tenant_id = $1)"),
            ("outbox", "subject LIKE '%' || $1::uuid::text || '%'"),
        ):
            rows += [
                r[0] for r in await db.fetch(f"SELECT row_to_json(t)::text FROM {table} t WHERE {where}", tenant_id)
            ]
        assert len(rows) > 30

        log_lines = {name: proc.logs().splitlines() for name, proc in processes.items()}
        assert all(len(lines) > 5 for lines in log_lines.values()), {n: len(v) for n, v in log_lines.items()}
        found = {
            "responses": [(r.where, hit) for r in api.seen if (hit := _hits(r.text, needles, r.allowed))],
            "logs": [(name, line[:300]) for name, lines in log_lines.items() for line in lines if _hits(line, needles)],
            "dlq": [hit for m in dlq_messages if (hit := _hits(m, needles))],
            "spans": [hit for b in spans.bodies if (hit := _hits(b.decode("utf-8", "replace"), needles))],
            "postgres": [(row[:200], hit) for row in rows if (hit := _hits(row, needles))],
        }
        assert found == {"responses": [], "logs": [], "dlq": [], "spans": [], "postgres": []}
        assert tenant_id is not None and len(api.seen) > 40
    finally:
        await spans.stop()
