"""Fake outside world for executor tests: HTTP sinks as local aiohttp apps, and a credential responder.

``FakeSink`` records every request (time, method, path, headers, body) and
tracks concurrency; ``behaviour`` decides each answer.  ``CredentialResponder``
answers ``svc.auth.credentials.resolve`` on the real test NATS from a dict.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import nats
from aiohttp import web

from deploy.local.infra import free_port
from libs.common.models.credentials import RESOLVE_SUBJECT, CredentialReply, CredentialRequest
from libs.common.models.events import EventEnvelope, event_id_for
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.wait import wait_until


@dataclass
class Seen:
    at: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: str | bytes = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Behaviour = Callable[[Seen, int], Answer | Awaitable[Answer]]  # (request, 1-based call number) -> answer


def always(answer: Answer) -> Behaviour:
    return lambda _req, _n: answer


def sequence(*answers: Answer) -> Behaviour:
    """The n-th call gets the n-th answer; later calls get the last one."""
    return lambda _req, n: answers[min(n, len(answers)) - 1]


class FakeSink:
    def __init__(self, behaviour: Behaviour | None = None, *, host: str = "127.0.0.1") -> None:
        self.behaviour: Behaviour = behaviour or always(Answer())
        self.host = host
        self.port = free_port()
        self.requests: list[Seen] = []
        self.current = 0
        self.max_concurrent = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def paths(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(
            time.monotonic(),
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            await request.read(),
        )
        self.requests.append(seen)
        self.current += 1
        self.max_concurrent = max(self.max_concurrent, self.current)
        try:
            answer = self.behaviour(seen, len(self.requests))
            if asyncio.iscoroutine(answer) or isinstance(answer, asyncio.Future):
                answer = await answer
            assert isinstance(answer, Answer)
            if answer.delay:
                await asyncio.sleep(answer.delay)
            body = answer.body.encode() if isinstance(answer.body, str) else answer.body
            ctype = "application/json" if body[:1] in (b"{", b"[") else "text/plain"
            return web.Response(
                status=answer.status,
                body=body if answer.status != 204 else None,
                headers={"Content-Type": ctype, **answer.headers},
            )
        finally:
            self.current -= 1

    async def start(self) -> FakeSink:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def openweather_ok(city: str = "Paris") -> Answer:
    return Answer(
        200,
        json.dumps(
            {
                "name": city,
                "sys": {"country": "FR"},
                "weather": [{"main": "Clouds", "description": "broken clouds"}],
                "main": {"temp": 12.5, "feels_like": 11.0, "humidity": 80, "pressure": 1012},
                "wind": {"speed": 4.1},
                "cod": 200,
            }
        ),
    )


class CredentialResponder:
    """Answers credential resolution from ``secrets[(tenant_id, credential_id)] = (type, secret)``."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.secrets: dict[tuple[uuid.UUID, uuid.UUID], tuple[str, dict[str, Any]]] = {}
        self.requests = 0
        self._nc: Any = None

    def add(self, tenant_id: uuid.UUID, ctype: str, secret: dict[str, Any]) -> uuid.UUID:
        credential_id = uuid.uuid4()
        self.secrets[(tenant_id, credential_id)] = (ctype, secret)
        return credential_id

    async def start(self) -> CredentialResponder:
        self._nc = await nats.connect(self.nats_url)
        await self._nc.subscribe(RESOLVE_SUBJECT, queue="auth", cb=self._on_msg)
        await self._nc.flush()
        return self

    async def _on_msg(self, msg: Any) -> None:
        self.requests += 1
        req = CredentialRequest.model_validate_json(msg.data)
        found = self.secrets.get((req.tenant_id, req.credential_id))
        if found is None:
            reply = CredentialReply(ok=False, error="not_found")
        else:
            reply = CredentialReply(ok=True, type=found[0], secret=found[1])
        await msg.respond(reply.model_dump_json().encode())

    async def stop(self) -> None:
        if self._nc is not None:
            await self._nc.close()


# --- executor test harness -------------------------------------------------------------------------


def executor_env(nats_url: str, database_url: str, **overrides: str) -> dict[str, str]:
    """Environment for ``python -m services.executor`` against the fakes on 127.0.0.1."""
    env = {
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "INFO",
        "IPAAS_EXECUTOR_SLACK_HOSTS": "127.0.0.1",
        "IPAAS_EXECUTOR_DISCORD_HOSTS": "127.0.0.1",
        "IPAAS_EXECUTOR_WEBHOOK_ALLOW_HTTP": "true",
        "IPAAS_EXECUTOR_BACKOFF_BASE_SECONDS": "0.2",
        "IPAAS_EXECUTOR_BACKOFF_MAX_SECONDS": "2",
        "IPAAS_EXECUTOR_ACTION_TIMEOUT_SECONDS": "5",
        "IPAAS_EXECUTOR_GRACE_SECONDS": "5",
        "IPAAS_EGRESS_ALLOW_CIDRS": "127.0.0.1/32",
    }
    env.update(overrides)
    return env


def definition(
    action_type: str,
    config: dict[str, Any],
    credential_id: uuid.UUID | None = None,
    trigger: dict[str, Any] | None = None,
    name: str = "wf",
) -> dict[str, Any]:
    action: dict[str, Any] = {"type": action_type, "config": config}
    if credential_id is not None:
        action["credential_id"] = str(credential_id)
    return {"name": name, "trigger": trigger or {"type": "webhook"}, "action": action}


class SlackTenant(NamedTuple):
    """A tenant and its Slack credential (the ``slack_tenant`` fixture)."""

    tenant: uuid.UUID
    credential: uuid.UUID


async def slack_workflow(
    db: Any, creds: CredentialResponder, sink_url: str, text: str, *, webhook_secret: str | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    """A new tenant with a Slack credential pointing at ``sink_url`` and a workflow posting ``text``
    (its webhooks signed with ``webhook_secret`` when one is given)."""
    tenant = await create_tenant(db)
    cred = creds.add(tenant, "slack", {"webhook_url": f"{sink_url}/services/T/B/X"})
    wf = await create_workflow(
        db, tenant, definition("slack_message", {"text": text}, cred), webhook_secret=webhook_secret
    )
    return tenant, wf


def envelope(
    tenant_id: uuid.UUID,
    workflow_id: uuid.UUID,
    payload: Any,
    *,
    version: int = 1,
    trigger: str = "webhook",
    dedup_key: str | None = None,
) -> EventEnvelope:
    """The envelope the gateway (or the scheduler) would publish: its id derived from the workflow and
    ``dedup_key`` (a new one unless given)."""
    key = dedup_key or uuid.uuid4().hex
    return EventEnvelope(
        event_id=event_id_for(workflow_id, key),
        dedup_key=key,
        tenant_id=tenant_id,
        workflow_id=workflow_id,
        workflow_version=version,
        trigger=trigger,
        payload=payload,
    )


async def publish_event(bus: Any, tenant_id: uuid.UUID, workflow_id: uuid.UUID, payload: Any, **fields: Any) -> Any:
    """Publish exactly as the gateway (or the scheduler) does: envelope JSON, subject, msg id (``fields`` as for
    :func:`envelope`)."""
    env = envelope(tenant_id, workflow_id, payload, **fields)
    await publish_many(bus, [env])
    return env


def webhook_envelopes(
    tenant_id: uuid.UUID, workflow_id: uuid.UUID, n: int, *, prefix: str = "k", start: int = 0, payload_key: str = "i"
) -> list[EventEnvelope]:
    """``n`` webhook events (version 1) of ``(tenant, workflow)`` numbered from ``start``: dedup key
    ``{prefix}{i}``, payload ``{payload_key: i}``; :func:`publish_many` publishes them."""
    return [
        envelope(tenant_id, workflow_id, {payload_key: i}, dedup_key=f"{prefix}{i}") for i in range(start, start + n)
    ]


async def publish_many(bus: Any, envelopes: list[Any], concurrency: int = 64) -> None:
    """Publish pre-built envelopes concurrently (bounded)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(env: Any) -> None:
        async with sem:
            await bus.publish(env.subject, env.model_dump_json().encode(), msg_id=env.msg_id)

    await asyncio.gather(*(one(e) for e in envelopes))


async def execution_row(db: Any, event_id: uuid.UUID) -> Any:
    return await db.fetchrow("SELECT * FROM executions WHERE event_id = $1", event_id)


FINAL = ("succeeded", "dead", "skipped", "filtered")


async def final_row(db: Any, event_id: uuid.UUID, timeout: float = 20.0, statuses: tuple[str, ...] = FINAL) -> Any:
    """Wait until the event's row has one of ``statuses`` (by default a final one) and return it."""

    async def check() -> Any:
        row = await execution_row(db, event_id)
        return row if row is not None and row["status"] in statuses else None

    return await wait_until(check, timeout=timeout, message=f"execution row for {event_id} in {statuses}")


def steps_workflow(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A webhook workflow of ``steps`` (the multi-step form of a definition)."""
    return {"name": "steps", "trigger": {"type": "webhook"}, "steps": steps}


def http_step(step_id: str, url: str, body: Any = None, **extra: Any) -> dict[str, Any]:
    """A step POSTing ``body`` to ``url``; ``extra`` adds to the step, its ``config`` to the action's config."""
    config: dict[str, Any] = {"method": "POST", "url": url}
    if body is not None:
        config["body"] = body
    config.update(extra.pop("config", {}))
    return {"id": step_id, "action": {"type": "http_request", "config": config}, **extra}
