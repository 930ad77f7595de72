"""The gateway through a NATS outage (issue 4, acceptance 4).

Ingest answers 503 with ``Retry-After`` while NATS is down, never 202, and 202
again once it is back, without a gateway restart.  Workflow writes made during
the outage are kept in the outbox and reach ``WORKFLOW_CHANGES`` afterwards.
"""

from __future__ import annotations

import asyncio

import asyncpg

from deploy.local.infra import NatsServer
from libs.common.bus import Bus
from libs.common.models.events import WorkflowChanged
from tests.helpers.gateway_app import SCHEDULE_WORKFLOW, Gateway, create_webhook_workflow, running_gateway, tenant
from tests.helpers.wait import equals, wait_until
from tests.helpers.webhooks import signed


async def post_hook(gw: Gateway, workflow_id: str, secret: str) -> tuple[int, str | None]:
    resp = await gw.client.post(f"/hooks/{workflow_id}", data="{}", headers=signed(secret, "{}"))
    return resp.status, resp.headers.get("Retry-After")


async def test_ingest_503_while_nats_is_down_and_outbox_catches_up(
    database_url: str, db: asyncpg.Connection, private_nats: NatsServer, private_bus: Bus
):
    async with running_gateway(database_url, private_nats.url) as gw:
        tenant_id = await tenant(database_url)
        auth = gw.auth(tenant_id)
        wid, secret = await create_webhook_workflow(gw, tenant_id)
        assert (await post_hook(gw, wid, secret))[0] == 202

        await asyncio.to_thread(private_nats.stop)
        statuses: list[int] = []

        async def refused() -> bool:
            status, retry_after = await post_hook(gw, wid, secret)
            statuses.append(status)
            return status == 503 and retry_after is not None and int(retry_after) >= 1

        await wait_until(refused, timeout=15, message="503 with Retry-After while NATS is down")
        assert 202 not in statuses
        run = await gw.client.post(f"/api/workflows/{wid}/run", json={"payload": {}}, headers=auth)
        assert run.status == 503 and "Retry-After" in run.headers

        # Writes still succeed: the change waits in the outbox.
        during = await gw.client.post("/api/workflows", json=SCHEDULE_WORKFLOW, headers=auth)
        assert during.status == 201
        new_id = (await during.json())["data"]["id"]
        pending = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        assert await db.fetchval(pending) >= 1

        await asyncio.to_thread(private_nats.start)

        async def accepted() -> bool:
            return (await post_hook(gw, wid, secret))[0] == 202

        await wait_until(accepted, timeout=20, message="202 again after NATS is back")

        await wait_until(lambda: equals(db.fetchval(pending), 0), timeout=20, message="outbox drained")
        msg = await private_bus.js.get_last_msg("WORKFLOW_CHANGES", f"workflows.changed.{tenant_id}.{new_id}")
        change = WorkflowChanged.model_validate_json(msg.data or b"")
        assert change.change == "created" and str(change.workflow_id) == new_id
