"""Quotas at the API, against real Postgres and NATS: each attack is refused with 422 and its code,
or bounded (pages), and a well-behaved tenant is not touched."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg

from libs.common.bus import Bus
from libs.common.settings import ScheduleSettings
from tests.helpers.factories import create_workflow
from tests.helpers.gateway_app import SCHEDULE_WORKFLOW, WEBHOOK_WORKFLOW, Gateway, all_pages, running_gateway, tenant
from tests.helpers.gateway_app import slack_text as slack


def schedule(**trigger: Any) -> dict[str, Any]:
    return {**SCHEDULE_WORKFLOW, "trigger": {"type": "schedule", **trigger}}


async def _call(gw: Gateway, method: str, path: str, tenant_id: uuid.UUID, body: Any = None) -> tuple[int, Any]:
    resp = await gw.client.request(method, path, json=body, headers=gw.auth(tenant_id))
    return resp.status, await resp.json()


async def test_a_schedule_faster_than_the_minimum_is_refused_on_create_replace_and_rollback(
    database_url: str,
    nats_url: str,
    bus: Bus,
    tenant_id: uuid.UUID,
) -> None:
    async with running_gateway(database_url, nats_url) as gw:  # the default: 10 s
        cases: list[tuple[dict[str, Any], str]] = [
            ({"interval_seconds": 5}, "trigger.interval_seconds"),
            ({"cron": "*/5 * * * * *"}, "trigger.cron"),
            ({"cron": "0,55 0,59 0,23 * * *"}, "trigger.cron"),
        ]
        for trigger, field in cases:
            status, body = await _call(gw, "POST", "/api/workflows", tenant_id, schedule(**trigger))
            assert status == 422, body
            assert body["error"]["code"] == "schedule_too_frequent"
            assert body["error"]["details"] == [
                {
                    "field": field,
                    "type": "schedule_too_frequent",
                    "message": "the schedule fires 5 s apart at its fastest; the shortest interval allowed is 10 s",
                }
            ]
        status, created = await _call(gw, "POST", "/api/workflows", tenant_id, schedule(cron="*/10 * * * * *"))
        assert status == 201, created
        wid = created["data"]["id"]
        status, body = await _call(gw, "PUT", f"/api/workflows/{wid}", tenant_id, schedule(interval_seconds=1))
        assert status == 422 and body["error"]["code"] == "schedule_too_frequent"
        status, listed = await _call(gw, "GET", "/api/workflows", tenant_id)
        assert [w["id"] for w in listed["data"]] == [wid]  # nothing refused was stored
        assert listed["data"][0]["version"] == 1

    # A version saved under a lower minimum cannot be made current again once the minimum is raised.
    async with running_gateway(database_url, nats_url, schedule=ScheduleSettings(min_interval_seconds=1)) as gw:
        status, body = await _call(gw, "PUT", f"/api/workflows/{wid}", tenant_id, schedule(interval_seconds=2))
        assert status == 200 and body["data"]["version"] == 2
        status, body = await _call(gw, "PUT", f"/api/workflows/{wid}", tenant_id, schedule(interval_seconds=60))
        assert status == 200 and body["data"]["version"] == 3
    async with running_gateway(database_url, nats_url) as gw:
        status, body = await _call(gw, "POST", f"/api/workflows/{wid}/rollback", tenant_id, {"version": 2})
        assert status == 422 and body["error"]["code"] == "schedule_too_frequent", body
        status, body = await _call(gw, "POST", f"/api/workflows/{wid}/rollback", tenant_id, {"version": 1})
        assert status == 200 and body["data"]["version"] == 4
        status, body = await _call(gw, "POST", f"/api/workflows/{wid}/rollback", tenant_id, {"version": 99})
        assert status == 404 and body["error"]["code"] == "version_not_found"


async def test_workflows_per_tenant_hold_under_concurrent_creates(database_url: str, nats_url: str, bus: Bus) -> None:
    greedy, other = await tenant(database_url), await tenant(database_url)
    async with running_gateway(database_url, nats_url, max_workflows_per_tenant=3) as gw:
        results = await asyncio.gather(
            *(_call(gw, "POST", "/api/workflows", greedy, WEBHOOK_WORKFLOW) for _ in range(12))
        )
        statuses = sorted(status for status, _ in results)
        assert statuses == [201] * 3 + [422] * 9
        refused = next(body for status, body in results if status == 422)
        assert refused["error"]["code"] == "workflow_quota_exceeded"
        assert refused["error"]["details"] == {"limit": 3}
        status, listed = await _call(gw, "GET", "/api/workflows", greedy)
        assert len(listed["data"]) == 3

        # Another tenant has its own quota; a deleted workflow frees a place.
        status, _ = await _call(gw, "POST", "/api/workflows", other, WEBHOOK_WORKFLOW)
        assert status == 201
        status, _ = await _call(gw, "DELETE", f"/api/workflows/{listed['data'][0]['id']}", greedy)
        assert status == 200
        status, _ = await _call(gw, "POST", "/api/workflows", greedy, WEBHOOK_WORKFLOW)
        assert status == 201
        status, _ = await _call(gw, "POST", "/api/workflows", greedy, WEBHOOK_WORKFLOW)
        assert status == 422


async def test_a_page_of_definitions_stays_within_its_byte_budget(
    database_url: str,
    nats_url: str,
    bus: Bus,
    db: asyncpg.Connection,
) -> None:
    tenant_id, quiet = await tenant(database_url), await tenant(database_url)
    budget = 8 * 1024
    async with running_gateway(database_url, nats_url, page_max_bytes=budget, definition_max_bytes=4 * 1024) as gw:
        status, body = await _call(gw, "POST", "/api/workflows", tenant_id, slack("x" * 5000))
        assert status == 422 and body["error"]["code"] == "definition_too_large", body
        assert body["error"]["details"]["limit"] == 4096
        ids = []
        for i in range(7):
            status, body = await _call(gw, "POST", "/api/workflows", tenant_id, slack(f"{i}" * 3000))
            assert status == 201, body
            ids.append(body["data"]["id"])
        # A definition stored before the limit (or around the API) still gets a page of its own.
        huge = await create_workflow(db, tenant_id, slack("h" * 20_000))
        await _call(gw, "POST", "/api/workflows", quiet, slack("q"))

        pages = await all_pages(gw, "/api/workflows", tenant_id, limit=200)
        assert [w["id"] for page in pages for w in page] == [*ids, str(huge)]  # every one, once, in order
        for page in pages:
            size = sum(len(json.dumps(w["action"])) for w in page)
            assert len(page) == 1 or size <= budget, [len(p) for p in pages]
        assert [len(p) for p in pages] == [2, 2, 2, 1, 1]

        # Versions page the same way, by count and by bytes.
        wid = ids[0]
        for i in range(4):
            status, _ = await _call(gw, "PUT", f"/api/workflows/{wid}", tenant_id, slack(f"v{i}" * 1500))
            assert status == 200
        pages = await all_pages(gw, f"/api/workflows/{wid}/versions", tenant_id, limit=200)
        assert [len(p) for p in pages] == [2, 2, 1]
        assert [v["version"] for page in pages for v in page] == [1, 2, 3, 4, 5]
        assert [v["current"] for page in pages for v in page] == [False] * 4 + [True]
        pages = await all_pages(gw, f"/api/workflows/{wid}/versions", tenant_id, limit=1)
        assert [v["version"] for page in pages for v in page] == [1, 2, 3, 4, 5]

        status, body = await _call(gw, "GET", f"/api/workflows/{wid}/versions?limit=201", tenant_id)
        assert status == 422 and body["error"]["details"][0]["field"] == "limit"
        for cursor in ("bm9wZQ", "WyJ2IiwwXQ", "WyJ2IiwiMSJd"):  # "nope", ["v",0], ["v","1"]
            status, body = await _call(gw, "GET", f"/api/workflows/{wid}/versions?cursor={cursor}", tenant_id)
            assert status == 422 and body["error"]["details"][0]["field"] == "cursor", cursor
        status, _ = await _call(gw, "GET", f"/api/workflows/{wid}/versions", quiet)
        assert status == 404  # another tenant's workflow
