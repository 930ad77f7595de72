"""``python -m services.gateway`` as a process: readiness drops on SIGTERM, in-flight requests finish."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import aiohttp
import orjson
from nats.aio.msg import Msg

from deploy.local.infra import free_port
from libs.common.bus import Bus
from tests.helpers.auth_setup import kek_env
from tests.helpers.gateway_app import SCHEDULE_WORKFLOW, tenant
from tests.helpers.services import ServiceProcess
from tests.helpers.tokens import TokenIssuer, serve_jwks
from tests.helpers.wait import wait_until


async def test_sigterm_drops_readiness_and_lets_in_flight_requests_finish(
    database_url: str, nats_url: str, bus: Bus, service: Callable[..., ServiceProcess]
):
    issuer = TokenIssuer()
    release = asyncio.Event()
    received = asyncio.Event()

    async def slow_executor(msg: Msg) -> None:
        received.set()
        await release.wait()
        await msg.respond(orjson.dumps({"status": "succeeded", "output": None, "error": None, "duration_ms": 1}))

    sub = await bus.nc.subscribe("svc.executor.dry_run", cb=slow_executor)
    async with serve_jwks(issuer, free_port()) as jwks_url:
        gw = service(
            "services.gateway",
            env={
                "NATS_URL": nats_url,
                "DATABASE_URL": database_url,
                "IPAAS_JWKS_URL": jwks_url,
                **kek_env(),
                "IPAAS_GATEWAY_DRAIN_DELAY_SECONDS": "1",
            },
        )
        headers = issuer.headers(await tenant(database_url))
        async with aiohttp.ClientSession() as http:
            created = await http.post(f"{gw.url}/api/workflows", json=SCHEDULE_WORKFLOW, headers=headers)
            assert created.status == 201
            in_flight = asyncio.create_task(
                http.post(
                    f"{gw.url}/api/workflows/dry-run",
                    json={"workflow": SCHEDULE_WORKFLOW, "payload": {}},
                    headers=headers,
                )
            )
            await wait_until(received.is_set, timeout=10, message="the dry-run to reach the executor")

            gw.proc.send_signal(signal.SIGTERM)

            async def not_ready() -> bool:
                async with http.get(f"{gw.url}/health/ready") as resp:
                    return resp.status == 503

            await wait_until(not_ready, timeout=5, message="readiness 503 after SIGTERM")
            release.set()
            resp = await asyncio.wait_for(in_flight, timeout=15)
            assert resp.status == 200
            assert (await resp.json())["data"]["status"] == "succeeded"
        code = await asyncio.to_thread(gw.proc.wait, 30)
        assert code == 0, gw.logs()[-3000:]
    await sub.unsubscribe()
