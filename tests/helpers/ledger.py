"""The fault tests' harness: the platform as processes, signed webhooks, and the ledger every fault test checks.

:class:`FaultStack` runs a gateway and executor replicas as processes against
the test's NATS and Postgres.  Tenants get ``http_request`` workflows that post
to a :class:`~tests.helpers.fakes.FakeSink` (the executor sends
``Idempotency-Key: <event_id>``, so the sink's receipts are counted per event).

:class:`Ledger` records every webhook answer and then checks what a user is
promised, whatever the fault:

- each webhook answered 202 ends as exactly one final execution row;
- no execution row exists without a 202;
- no event is left in the consumer, and none waits parked;
- the sink got each succeeded ``event_id``, and any extra receipt is counted
  and must be explained by the test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg

from deploy.local.infra import PostgresServer, free_port
from libs.common.bus import Bus
from tests.helpers.auth_setup import kek_env
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import FakeSink, definition, executor_env
from tests.helpers.services import ServiceProcess
from tests.helpers.tokens import TokenIssuer, serve_jwks
from tests.helpers.wait import consumer_idle, wait_until
from tests.helpers.webhooks import signed

FINAL = ("succeeded", "dead", "skipped")


@dataclass
class Tenant:
    id: uuid.UUID
    workflow_id: uuid.UUID
    secret: str


@dataclass
class Answer:
    status: int
    event_id: str | None
    retry_after: str | None
    sent_at: float
    answered_at: float
    webhook_id: str = ""  # the sender's id: a retry with it is the same event (never run twice)
    body: str = ""


@dataclass
class Ledger:
    answers: list[Answer] = field(default_factory=list)

    @property
    def accepted(self) -> dict[str, Answer]:
        return {a.event_id: a for a in self.answers if a.status == 202 and a.event_id is not None}

    def statuses(self) -> Counter[int]:
        return Counter(a.status for a in self.answers)

    def refused(self) -> list[Answer]:
        """Answers a sender must retry: 503 (stored or not is unknown) and no answer at all."""
        return [a for a in self.answers if a.status in (0, 503)]

    def refused_without_retry_after(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 503 and not a.retry_after]

    async def settle(self, db: asyncpg.Connection, bus: Bus, *, timeout: float) -> None:
        """Wait until every accepted event has a final row, the consumer is empty and nothing is parked."""
        ids = [uuid.UUID(e) for e in self.accepted]

        async def done() -> bool:
            final = await db.fetchval(
                "SELECT count(*) FROM executions WHERE event_id = ANY($1::uuid[]) AND status = ANY($2::text[])",
                ids,
                list(FINAL),
            )
            if final != len(ids):
                return False
            return await db.fetchval("SELECT count(*) FROM deferred_events") == 0 and await consumer_idle(bus)

        await wait_until(done, timeout=timeout, interval=0.25, message="every accepted event final, none left")

    async def check(
        self,
        db: asyncpg.Connection,
        bus: Bus,
        workflows: list[uuid.UUID],
        sink: FakeSink | None = None,
        *,
        extra_receipts_allowed: int = 0,
    ) -> dict[str, Any]:
        """Assert the ledger; returns the figures (rows by status, receipts) for further checks."""
        accepted = self.accepted
        rows = await db.fetch(
            "SELECT event_id, status, attempts FROM executions WHERE workflow_id = ANY($1::uuid[])", workflows
        )
        by_event = {str(r["event_id"]): r for r in rows}
        missing = [e for e in accepted if e not in by_event]
        phantom = [e for e in by_event if e not in accepted]
        not_final = [e for e, r in by_event.items() if r["status"] not in FINAL]
        assert not missing, f"{len(missing)} accepted events have no execution row"
        assert not phantom, f"{len(phantom)} execution rows have no 202"
        assert not not_final, f"{len(not_final)} rows are not final"
        info = await bus.js.consumer_info("EVENTS", "executor")
        assert info.num_pending == 0 and info.num_ack_pending == 0, info
        assert await db.fetchval("SELECT count(*) FROM deferred_events") == 0
        result: dict[str, Any] = {"rows": Counter(r["status"] for r in rows)}
        if sink is not None:
            receipts = Counter(r.headers.get("Idempotency-Key", "") for r in sink.requests)
            succeeded = [e for e, r in by_event.items() if r["status"] == "succeeded"]
            never = [e for e in succeeded if receipts[e] == 0]
            assert not never, f"{len(never)} succeeded events never reached the sink"
            extra = sum(receipts[e] - 1 for e in succeeded if receipts[e] > 1)
            result["extra_receipts"] = extra
            assert extra <= extra_receipts_allowed, f"{extra} events reached the sink more than once"
        return result


def http_workflow(url: str, *, name: str = "wf", body: Any = None) -> dict[str, Any]:
    config: dict[str, Any] = {"method": "POST", "url": url, "headers": {"Content-Type": "application/json"}}
    config["body"] = body if body is not None else {"event": "{{ event.id }}", "n": "{{ payload.n }}"}
    return definition("http_request", config, name=name)


@dataclass
class FaultStack:
    """A gateway and executor replicas as processes, with a token issuer for API calls."""

    service: Callable[..., ServiceProcess]
    db: asyncpg.Connection
    nats_url: str
    database_url: str
    jwks_url: str
    issuer: TokenIssuer
    http: aiohttp.ClientSession
    gateway: ServiceProcess | None = None
    # One keyring for every gateway of the stack: each reads what another sealed.
    keks: dict[str, str] = field(default_factory=kek_env)
    executors: list[ServiceProcess] = field(default_factory=list)

    def start_gateway(self, **overrides: str) -> ServiceProcess:
        env = {
            "NATS_URL": self.nats_url,
            "DATABASE_URL": self.database_url,
            "LOG_LEVEL": "INFO",
            "IPAAS_JWKS_URL": self.jwks_url,
            "IPAAS_GATEWAY_WEBHOOK_RATE_PER_SECOND": "1000000",
            "IPAAS_GATEWAY_WEBHOOK_BURST": "1000000",
            "IPAAS_GATEWAY_OUTBOX_POLL_SECONDS": "0.2",
            **self.keks,
            **overrides,
        }
        self.gateway = self.service("services.gateway", env=env)
        return self.gateway

    def start_executor(self, **overrides: str) -> ServiceProcess:
        ex = self.service("services.executor", env=executor_env(self.nats_url, self.database_url, **overrides))
        self.executors.append(ex)
        return ex

    async def tenant(self, definition: dict[str, Any], name: str = "tenant") -> Tenant:
        tenant_id = await create_tenant(self.db, name)
        secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        wf = await create_workflow(self.db, tenant_id, definition, webhook_secret=secret)
        return Tenant(tenant_id, wf, secret)

    async def api(self, method: str, path: str, tenant: Tenant, body: Any = None) -> tuple[int, Any]:
        assert self.gateway is not None
        async with self.http.request(
            method, f"{self.gateway.url}{path}", json=body, headers=self.issuer.headers(tenant.id)
        ) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None)

    async def send(
        self,
        ledger: Ledger,
        tenant: Tenant,
        n: int,
        *,
        concurrency: int = 32,
        payload: Callable[[int], Any] | None = None,
        gateway: ServiceProcess | None = None,
    ) -> None:
        """Send ``n`` signed webhooks (``concurrency`` at a time), recording every answer in ``ledger``."""
        gw = gateway or self.gateway
        assert gw is not None
        url = f"{gw.url}/hooks/{tenant.workflow_id}"
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            body = json.dumps(payload(i) if payload is not None else {"n": i})
            async with gate:
                await self._post(ledger, tenant.secret, url, f"msg_{uuid.uuid4().hex}", body)

        await asyncio.gather(*(one(i) for i in range(n)))

    async def send_accepted(self, ledger: Ledger, tenant: Tenant, n: int, *, concurrency: int) -> None:
        """Send ``n`` more webhooks, every one of which must be accepted (202), and add them to ``ledger``."""
        more = Ledger()
        await self.send(more, tenant, n, concurrency=concurrency)
        assert more.statuses() == {202: n}
        ledger.answers += more.answers

    async def every_event_once(
        self, ledger: Ledger, tenant: Tenant, bus: Bus, sink: FakeSink, *, timeout: float, rounds: int = 10
    ) -> None:
        """After a fault: every refused webhook retried with its own ``webhook-id`` (``rounds`` times at most), as a
        sender honouring ``Retry-After`` does; then every 202 is one succeeded row and one receipt.

        A 503 does not say the event was not stored (the store may have happened
        with its acknowledgement lost): the retry is then a duplicate and gets 202
        with the same ``event_id``, and the event still runs once.
        """
        assert self.gateway is not None
        url = f"{self.gateway.url}/hooks/{tenant.workflow_id}"
        settled: set[str] = {a.webhook_id for a in ledger.answers if a.status == 202}
        gate = asyncio.Semaphore(16)

        async def again(webhook_id: str, body: str) -> None:
            async with gate:
                if await self._post(ledger, tenant.secret, url, webhook_id, body) == 202:
                    settled.add(webhook_id)

        for _ in range(rounds):
            todo = {a.webhook_id: a for a in ledger.refused() if a.webhook_id and a.webhook_id not in settled}
            if not todo:
                break
            await asyncio.gather(*(again(webhook_id, answer.body) for webhook_id, answer in todo.items()))
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"{len(todo)} refused webhooks still refused after {rounds} rounds")
        await ledger.settle(self.db, bus, timeout=timeout)
        figures = await ledger.check(self.db, bus, [tenant.workflow_id], sink)
        assert figures["rows"] == {"succeeded": len(ledger.accepted)}
        assert figures["extra_receipts"] == 0

    async def _post(self, ledger: Ledger, secret: str, url: str, msg_id: str, body: str) -> int:
        headers = signed(secret, body, msg_id=msg_id)
        sent = time.monotonic()
        try:
            async with self.http.post(url, data=body, headers=headers) as resp:
                data = await resp.read()
                event_id = json.loads(data)["data"]["event_id"] if resp.status == 202 else None
                ledger.answers.append(
                    Answer(resp.status, event_id, resp.headers.get("Retry-After"), sent, time.monotonic(), msg_id, body)
                )
                return resp.status
        except (aiohttp.ClientError, OSError):
            ledger.answers.append(Answer(0, None, None, sent, time.monotonic(), msg_id, body))
            return 0


@asynccontextmanager
async def fault_stack(
    service: Callable[..., ServiceProcess], db: asyncpg.Connection, nats_url: str, database_url: str
) -> AsyncIterator[FaultStack]:
    issuer = TokenIssuer()
    async with (
        serve_jwks(issuer, free_port()) as jwks_url,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as http,
    ):
        yield FaultStack(service, db, nats_url, database_url, jwks_url, issuer, http)


def stop_immediately(pg: PostgresServer) -> None:
    """``pg_ctl stop -m immediate``: SIGQUIT, no checkpoint, every backend killed at once."""
    assert pg.proc is not None
    pg.proc.send_signal(signal.SIGQUIT)
    pg.proc.wait(20)


async def burst_with_outage(
    send: Callable[[], Awaitable[None]], ledger: Ledger, after: int, outage: Callable[[], None]
) -> None:
    """Run ``send`` and, once ``after`` answers are in, call ``outage`` (in a thread) while it goes on."""
    sending = asyncio.ensure_future(send())
    await wait_until(lambda: len(ledger.answers) >= after, timeout=60, message=f"{after} answers")
    await asyncio.to_thread(outage)
    await sending
