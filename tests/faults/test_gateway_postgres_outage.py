"""Postgres stops (immediate mode) and restarts under a webhook burst; gateway and auth run as processes.

While it is down: webhooks to a workflow the gateway has cached keep getting
202 (served stale past the cache TTL), a workflow it has not cached gets 503
with ``Retry-After``, every API route of gateway and auth answers 503
``database_unavailable`` with ``Retry-After``.  No response is ever a 500.
After the restart everything answers as before without restarting a service,
and every accepted event is in ``EVENTS`` exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from deploy.local.infra import PostgresServer
from libs.common.bus import Bus
from tests.helpers.auth_setup import PASSWORD
from tests.helpers.factories import execute_once, fetchval_once
from tests.helpers.gateway_app import WEBHOOK_WORKFLOW
from tests.helpers.ledger import Answer, stop_immediately
from tests.helpers.scheduler import stored_events
from tests.helpers.services import ServiceProcess
from tests.helpers.stack_processes import Api, start_auth_and_gateway
from tests.helpers.wait import wait_until
from tests.helpers.webhooks import signed


async def webhook(http: aiohttp.ClientSession, base: str, workflow: dict[str, Any]) -> Answer:
    """One signed webhook to ``workflow`` (as the API shows it) on the gateway at ``base``."""
    body = '{"order": 1}'
    headers = signed(workflow["webhook"]["secret"], body)
    sent = time.monotonic()
    async with http.post(f"{base}{workflow['webhook']['url']}", data=body.encode(), headers=headers) as resp:
        out = orjson.loads(await resp.read())
        event_id = out["data"]["event_id"] if resp.status == 202 else None
        return Answer(resp.status, event_id, resp.headers.get("Retry-After"), sent, time.monotonic())


async def test_postgres_restart_under_a_webhook_burst(
    private_pg: PostgresServer, nats_url: str, bus: Bus, service: Callable[..., ServiceProcess], tmp_path: Path
):
    auth, gateway = start_auth_and_gateway(
        service,
        private_pg.dsn("ipaas"),
        nats_url,
        tmp_path,
        gateway={
            "IPAAS_GATEWAY_CACHE_TTL_SECONDS": "1",
            "IPAAS_GATEWAY_CACHE_STALE_SECONDS": "120",
            "IPAAS_GATEWAY_RETRY_AFTER_SECONDS": "1",
            "IPAAS_GATEWAY_WEBHOOK_BURST": "100000",
            "IPAAS_GATEWAY_WEBHOOK_RATE_PER_SECOND": "100000",
            # Auth's revocation feed needs Postgres too: keep the list vouching through the outage, so the
            # API's answers show the database's unavailability, the subject here (not a stale list's).
            "IPAAS_GATEWAY_REVOCATION_MAX_STALE_SECONDS": "600",
        },
    )
    gw = gateway.url
    answers: list[Answer] = []
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as http:
        api = Api(http, gw)
        await api.sign_up()
        creds, auth_headers = {"email": api.email, "password": PASSWORD}, api.headers
        warm, cold = [await api.data("POST", "/api/workflows", WEBHOOK_WORKFLOW, expect=201) for _ in range(2)]
        # The creations' change messages drop cache entries when they arrive: let them arrive first.
        outbox_drained = "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"
        await wait_until(
            lambda: fetchval_once(private_pg.dsn("ipaas"), outbox_drained), timeout=15, message="the outbox relayed"
        )
        assert (await webhook(http, gw, warm)).status == 202  # now cached

        async def sender() -> None:
            while not stop.is_set():
                answers.append(await webhook(http, gw, warm))
                await asyncio.sleep(0.01)  # pacing the load, not synchronisation

        # The test server runs with synchronous_commit=off: make what was committed survive the crash.
        await execute_once(private_pg.dsn("ipaas"), "CHECKPOINT")
        senders = [asyncio.create_task(sender()) for _ in range(3)]
        try:
            await asyncio.to_thread(stop_immediately, private_pg)
            down_at = time.monotonic()

            # The cache TTL (1 s) passes: the warm workflow's entry is reloaded, fails, and is served stale.
            await wait_until(
                lambda: "serving stale webhook look-ups" in gateway.logs(),
                timeout=15,
                message="the gateway serving stale look-ups",
            )

            async def unavailable(method: str, url: str, **kwargs: Any) -> None:
                async with http.request(method, url, **kwargs) as r:
                    body = await r.json()
                    assert r.status == 503, (url, r.status, body)
                    assert int(r.headers["Retry-After"]) >= 1, url
                    assert body["error"]["code"] == "database_unavailable", (url, body)

            for path in ("/api/workflows", "/api/executions", "/api/dlq"):
                await unavailable("GET", f"{gw}{path}", headers=auth_headers)
            await unavailable("POST", f"{gw}/api/workflows", json=WEBHOOK_WORKFLOW, headers=auth_headers)
            await unavailable("POST", f"{gw}/api/auth/login", json=creds)  # forwarded to auth
            await unavailable("GET", f"{auth.url}/api/credentials", headers=auth_headers)
            uncached = await webhook(http, gw, cold)  # never cached: nothing to fall back on
            assert uncached.status == 503 and uncached.retry_after is not None
            up_at = time.monotonic()

            await asyncio.to_thread(private_pg.start)

            async def api_back() -> bool:
                async with http.get(f"{gw}/api/workflows", headers=auth_headers) as r:
                    return r.status == 200

            await wait_until(api_back, timeout=30, interval=0.2, message="the API answering 200 again")

            async def login_back() -> bool:
                async with http.post(f"{gw}/api/auth/login", json=creds) as r:
                    return r.status == 200

            await wait_until(login_back, timeout=30, interval=0.2, message="login answering 200 again")

            async def cold_back() -> bool:
                return (await webhook(http, gw, cold)).status == 202

            await wait_until(cold_back, timeout=30, interval=0.2, message="the uncached workflow accepted again")
            settled = len(answers)
            await wait_until(lambda: len(answers) > settled + 5, timeout=10, message="more webhooks after restart")
        finally:
            stop.set()
            await asyncio.gather(*senders, return_exceptions=True)

    refused = [a for a in answers if a.status != 202]
    assert all(a.status == 503 and a.retry_after is not None for a in refused), Counter(a.status for a in answers)
    during = [a for a in answers if down_at <= a.answered_at <= up_at]
    assert len(during) >= 10 and {a.status for a in during} == {202}, Counter(a.status for a in during)
    assert any(a.status == 202 for a in answers if a.answered_at > up_at)

    accepted = [a.event_id for a in answers if a.status == 202 and a.event_id is not None]
    stored = Counter(str(env.event_id) for _, env in await stored_events(bus))
    assert len(set(accepted)) == len(accepted)
    missing = [e for e in accepted if stored[e] != 1]
    assert not missing, f"{len(missing)} accepted events not stored exactly once"
